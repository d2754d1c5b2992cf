/* A low-CPU MQTT load generator for bench/ingest.py (libmosquitto).
 *
 *   mqtt_blast HOST PORT RATE SECONDS QOS FILE
 *
 * FILE holds one message per line as "topic<TAB>payload".  Publishes RATE
 * messages per second for SECONDS seconds, in order (wrapping around the file
 * if it is short), then waits for the broker to acknowledge QoS 1 messages,
 * and prints "published N acknowledged M seconds S".
 *
 * At most MAX_OUTSTANDING QoS 1 messages wait for the broker's PUBACK: libmosquitto
 * walks its list of unacknowledged messages on every PUBACK, so when a busy broker
 * falls behind, an unbounded list made this publisher spin a whole core (seen:
 * 115 s of CPU in 121 s), taking it from the system being measured.  Waiting
 * instead makes publishing take longer than SECONDS, which S shows.
 */
#include <mosquitto.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_OUTSTANDING 1000

static atomic_long acked = 0;

static void on_publish(struct mosquitto *m, void *u, int mid) { (void)m; (void)u; (void)mid; acked++; }

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: %s HOST PORT RATE SECONDS QOS FILE\n", argv[0]);
        return 2;
    }
    const char *host = argv[1];
    int port = atoi(argv[2]), qos = atoi(argv[5]);
    double rate = atof(argv[3]), seconds = atof(argv[4]);
    FILE *in = fopen(argv[6], "r");
    if (!in) { perror(argv[6]); return 1; }
    size_t cap = 1 << 20, n = 0;
    char **topics = malloc(cap * sizeof *topics), **payloads = malloc(cap * sizeof *payloads);
    char *line = NULL; size_t len = 0; ssize_t got;
    while ((got = getline(&line, &len, in)) > 0) {
        if (line[got - 1] == '\n') line[--got] = 0;
        char *tab = strchr(line, '\t');
        if (!tab) continue;
        *tab = 0;
        if (n == cap) { cap *= 2; topics = realloc(topics, cap * sizeof *topics); payloads = realloc(payloads, cap * sizeof *payloads); }
        topics[n] = strdup(line); payloads[n] = strdup(tab + 1); n++;
    }
    fclose(in);
    if (n == 0) { fprintf(stderr, "no messages in %s\n", argv[6]); return 1; }

    mosquitto_lib_init();
    struct mosquitto *m = mosquitto_new(NULL, true, NULL);
    mosquitto_max_inflight_messages_set(m, 0);
    mosquitto_publish_callback_set(m, on_publish);
    if (mosquitto_connect(m, host, port, 60) != MOSQ_ERR_SUCCESS) { fprintf(stderr, "connect failed\n"); return 1; }
    mosquitto_loop_start(m);

    long total = (long)(rate * seconds), sent = 0;
    double start = now();
    while (sent < total) {
        long due = (long)((now() - start) * rate) + 1;
        if (due > total) due = total;
        while (sent < due && (qos == 0 || sent - acked < MAX_OUTSTANDING)) {
            size_t i = (size_t)sent % n;
            mosquitto_publish(m, NULL, topics[i], (int)strlen(payloads[i]), payloads[i], qos, false);
            sent++;
        }
        struct timespec pause = {0, 500000};
        nanosleep(&pause, NULL);
    }
    double publish_s = now() - start;
    if (qos > 0) {
        double deadline = now() + 60;
        while (acked < sent && now() < deadline) { struct timespec p = {0, 5000000}; nanosleep(&p, NULL); }
    }
    printf("published %ld acknowledged %ld seconds %.3f\n", sent, (long)acked, publish_s);
    mosquitto_disconnect(m);
    mosquitto_loop_stop(m, false);
    mosquitto_destroy(m);
    mosquitto_lib_cleanup();
    return 0;
}
