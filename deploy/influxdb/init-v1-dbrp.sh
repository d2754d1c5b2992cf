#!/bin/sh
# Runs once when the InfluxDB 2.x container is first set up: serve the bucket as
# database "firewarden" on the v1-compatible API (/write, /query) Firewarden uses.
set -e
influx v1 dbrp create \
  --db firewarden \
  --rp autogen \
  --bucket-id "${DOCKER_INFLUXDB_INIT_BUCKET_ID}" \
  --default \
  --org "${DOCKER_INFLUXDB_INIT_ORG}" \
  --token "${DOCKER_INFLUXDB_INIT_ADMIN_TOKEN}"
