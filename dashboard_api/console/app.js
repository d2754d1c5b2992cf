// Firewarden console: plain JavaScript, no build step.  Talks to /api/v1 with the API
// key kept in sessionStorage (this tab only) and follows /api/v1/alerts/stream with
// fetch(), which (unlike EventSource) can send the Authorization header.
"use strict";

const LABELS = {
  zh: {
    title: "监控中心", all: "全部", tab_board: "告警", tab_fleet: "设备状态", tab_duty: "查岗", tab_device: "设备",
    sign_out: "退出", api_key: "API 密钥", sign_in: "登录", key_hint: "密钥只保存在本浏览器标签页的会话中。",
    all_severities: "全部级别", sev_critical: "紧急", sev_major: "重要", sev_minor: "一般", sev_info: "提示",
    all_categories: "全部类别", jurisdiction: "辖区", loading: "加载中…", no_alerts: "没有未处理的告警。",
    target_device: "单个消控室", target_site: "单位", target_jurisdiction: "辖区", duty_start: "发起查岗",
    duty_empty: "尚未发起查岗。", device_id: "设备编号", show: "查看",
    device_empty: "输入设备编号，或在告警中点击设备。", resolve_title: "处理告警", outcome: "结论",
    outcome_none: "（非火警无需选择）", outcome_real_fire: "真实火警", outcome_false_alarm: "误报",
    outcome_test: "测试", note: "备注", cancel: "取消", resolve: "处理完毕", acknowledge: "确认",
    acknowledged: "已确认", open: "未确认", resolved: "已处理", live: "实时连接", reconnecting: "正在重连…",
    stream_lost: "实时连接中断，正在重试", key_revoked: "密钥无效或已被吊销，请重新登录。",
    bad_key: "密钥无效。", outcome_needed: "火警必须选择结论。", count_suffix: "条告警",
    devices: "设备", online: "在线", offline: "离线", never_seen: "从未上线", maintenance: "维护中",
    kind: "类型", sites: "单位", open_alerts: "未处理告警", critical: "紧急", name: "名称",
    status: "状态", requested: "发起时间", answered: "应答", response: "响应时间", pending: "等待应答",
    missed: "未应答", last_seen: "最后上报", site: "单位", no_data: "该时段没有数据。",
    fire: "火警", hazard: "隐患", fault: "故障", power: "电源", tamper: "防拆", low_battery: "低电量",
    duty_lapse: "脱岗", test: "测试", smoke: "烟感", electrical: "电气火灾", controlroom: "消控室",
    times: "次", error: "出错了", active: "正常", decommissioned: "已停用", no_devices: "还没有登记设备。", no_checks: "没有匹配的消控室。",
  },
  en: {
    title: "Monitoring centre", all: "All", tab_board: "Alerts", tab_fleet: "Fleet", tab_duty: "Duty checks",
    tab_device: "Device", sign_out: "Sign out", api_key: "API key", sign_in: "Sign in",
    key_hint: "The key is kept in this browser tab's session only.", all_severities: "All severities",
    sev_critical: "Critical", sev_major: "Major", sev_minor: "Minor", sev_info: "Info",
    all_categories: "All categories", jurisdiction: "Jurisdiction", loading: "Loading…",
    no_alerts: "No open alerts.", target_device: "One control room", target_site: "Site",
    target_jurisdiction: "Jurisdiction", duty_start: "Start duty check",
    duty_empty: "No duty check started yet.", device_id: "Device id", show: "Show",
    device_empty: "Enter a device id, or click a device on an alert.", resolve_title: "Resolve alert",
    outcome: "Outcome", outcome_none: "(only fire alarms need one)", outcome_real_fire: "Real fire",
    outcome_false_alarm: "False alarm", outcome_test: "Test", note: "Note", cancel: "Cancel",
    resolve: "Resolve", acknowledge: "Acknowledge", acknowledged: "Acknowledged", open: "Open",
    resolved: "Resolved", live: "Live", reconnecting: "Reconnecting…",
    stream_lost: "Live stream lost; retrying", key_revoked: "The key is invalid or revoked: sign in again.",
    bad_key: "That key is not valid.", outcome_needed: "A fire alarm needs an outcome.",
    count_suffix: "alerts", devices: "Devices", online: "Online", offline: "Offline",
    never_seen: "Never seen", maintenance: "Maintenance", kind: "Kind", sites: "Sites",
    open_alerts: "Open alerts", critical: "Critical", name: "Name", status: "Status",
    requested: "Requested", answered: "Answered", response: "Response", pending: "Pending",
    missed: "Missed", last_seen: "Last seen", site: "Site", no_data: "No data in this period.",
    fire: "Fire", hazard: "Hazard", fault: "Fault", power: "Power", tamper: "Tamper",
    low_battery: "Low battery", duty_lapse: "Duty lapse", test: "Test", smoke: "Smoke detector",
    electrical: "Electrical monitor", controlroom: "Control room", times: "times", error: "Error",
    active: "Active", decommissioned: "Decommissioned",
    no_devices: "No devices registered yet.", no_checks: "No matching control room.",
  },
};
const CATEGORIES = ["fire", "hazard", "fault", "power", "tamper", "low_battery", "offline",
                    "duty_lapse"];
const CHART_FIELDS = {
  electrical: ["residual_current_ma", "temperature_c_1", "temperature_c_2", "temperature_c_3"],
  smoke: ["battery_pct", "rsrp_dbm"],
  controlroom: ["operators_on_duty"],
};

const state = {
  lang: localStorage.getItem("fw.lang") || (navigator.language.startsWith("zh") ? "zh" : "en"),
  key: sessionStorage.getItem("fw.key"),
  alerts: new Map(), lastEventId: null, stream: null, audio: null, dutyTimer: null,
  lastDuty: null, device: null,
};
const $ = (selector) => document.querySelector(selector);
const t = (name) => LABELS[state.lang][name] ?? name;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (value !== undefined && value !== null) node.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) {
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }
  return node;
}

function applyLabels() {
  document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of document.querySelectorAll("[data-i18n-placeholder]")) {
    node.placeholder = t(node.dataset.i18nPlaceholder);
  }
  $("#lang").textContent = state.lang === "zh" ? "EN" : "中文";
}

function showBanner(message) {
  const banner = $("#banner");
  banner.textContent = message || "";
  banner.hidden = !message;
}

class Unauthorized extends Error {}

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { Authorization: `Bearer ${state.key}`, "Content-Type": "application/json",
               ...(options.headers || {}) },
  });
  if (response.status === 401) throw new Unauthorized();
  const body = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
  if (!response.ok) {
    const detail = body?.detail;
    throw new Error(Array.isArray(detail) ? detail.map((d) => d.msg).join("; ") : detail || response.statusText);
  }
  return body;
}

function signedOut(message) {
  sessionStorage.removeItem("fw.key");
  state.key = null;
  if (state.stream) state.stream.abort();
  clearInterval(state.dutyTimer);
  $("#sign-in").hidden = false;
  $("#tabs").hidden = $("#sign-out").hidden = $("#stream-state").hidden = true;
  for (const panel of document.querySelectorAll("[data-panel]")) panel.hidden = true;
  showBanner(message);
}

// --- alert board ---------------------------------------------------------------------
function isPinned(alert) { return alert.category === "fire" && alert.status !== "resolved"; }

function renderBoard() {
  const severity = $("#f-severity").value;
  const category = $("#f-category").value;
  const jurisdiction = $("#f-jurisdiction").value.trim();
  const shown = [...state.alerts.values()]
    .filter((a) => a.status !== "resolved")
    .filter((a) => !severity || a.severity === severity)
    .filter((a) => !category || a.category === category)
    .filter((a) => !jurisdiction || a.jurisdiction.includes(jurisdiction))
    .sort((a, b) => (isPinned(b) - isPinned(a)) || b.opened_at.localeCompare(a.opened_at));
  const box = $("#alerts");
  box.replaceChildren(...(shown.length ? shown.map(card)
    : [el("p", { class: "empty", "data-testid": "no-alerts" }, t("no_alerts"))]));
  $("#board-count").textContent = `${shown.length} ${t("count_suffix")}`;
}

function card(alert) {
  const opened = new Date(alert.opened_at).toLocaleString(state.lang === "zh" ? "zh-CN" : "en");
  const point = alert.details?.point;
  return el("article", {
    class: `card ${alert.severity}${isPinned(alert) ? " pinned" : ""}`, "data-testid": "alert-card",
    "data-id": alert.id, "data-type": alert.type, "data-status": alert.status,
  },
  el("div", { class: "head" },
    el("span", {}, `${t(alert.category)} · ${alert.type}${alert.subject ? ` (${alert.subject})` : ""}`),
    el("span", { class: `badge ${alert.status}`, "data-testid": "alert-status" }, t(alert.status))),
  el("div", {}, el("a", { onclick: () => openDevice(alert.device_id) }, alert.device_id),
     ` · ${alert.site_id ?? "—"} · ${alert.jurisdiction || "—"}`),
  point ? el("div", { class: "muted" }, [point.zone, point.description].filter(Boolean).join(" · ")) : null,
  el("div", { class: "muted" }, `${t("sev_" + alert.severity)} · ${opened}`
     + (alert.count > 1 ? ` · ×${alert.count}` : "")),
  el("div", { class: "actions" },
    alert.status === "open" ? el("button", { "data-testid": "acknowledge", onclick: () => acknowledge(alert) },
                                 t("acknowledge")) : null,
    el("button", { "data-testid": "resolve", onclick: () => askResolve(alert) }, t("resolve"))));
}

async function loadAlerts() {
  const query = "/api/v1/alerts?status=open&status=acknowledged&include_suppressed=false&limit=500";
  const body = await api(query);
  state.alerts = new Map(body.data.map((a) => [a.id, a]));
  renderBoard();
}

async function acknowledge(alert) {
  try {
    const updated = await api(`/api/v1/alerts/${alert.id}/acknowledge`, { method: "POST", body: "{}" });
    state.alerts.set(updated.id, updated);
    renderBoard();
  } catch (error) { handleError(error); }
}

function askResolve(alert) {
  const dialog = $("#resolve-dialog");
  $("#resolve-outcome").value = "";
  $("#resolve-note").value = "";
  $("#resolve-error").hidden = true;
  dialog.dataset.id = alert.id;
  dialog.dataset.fire = alert.category === "fire" ? "1" : "";
  dialog.showModal();
}

async function resolveConfirmed(event) {
  const dialog = $("#resolve-dialog");
  if (event.submitter?.value !== "ok") return;
  event.preventDefault();
  const outcome = $("#resolve-outcome").value || null;
  if (dialog.dataset.fire && !outcome) {
    $("#resolve-error").textContent = t("outcome_needed");
    $("#resolve-error").hidden = false;
    return;
  }
  try {
    const updated = await api(`/api/v1/alerts/${dialog.dataset.id}/resolve`, {
      method: "POST", body: JSON.stringify({ outcome, note: $("#resolve-note").value }),
    });
    state.alerts.set(updated.id, updated);
    dialog.close();
    renderBoard();
  } catch (error) {
    $("#resolve-error").textContent = error.message;
    $("#resolve-error").hidden = false;
  }
}

function beep() {
  if (!state.audio) return;  // browsers allow sound only after the user has interacted
  const oscillator = state.audio.createOscillator();
  const gain = state.audio.createGain();
  oscillator.frequency.value = 880;
  gain.gain.value = 0.2;
  oscillator.connect(gain).connect(state.audio.destination);
  oscillator.start();
  oscillator.stop(state.audio.currentTime + 0.6);
}

function applyChange(change) {
  state.lastEventId = change.id;
  const known = state.alerts.get(change.alert.id);
  state.alerts.set(change.alert.id, change.alert);
  if ((change.action === "raised" || change.action === "reopened") && !known
      && change.alert.category === "fire") beep();
  renderBoard();
}

function setStreamState(name, bad) {
  const node = $("#stream-state");
  node.textContent = t(name);
  node.dataset.state = name;
  node.className = bad ? "state-bad" : "state-ok";
  node.hidden = false;
}

async function follow() {
  let delay = 1000;
  while (state.key) {
    const controller = new AbortController();
    state.stream = controller;
    try {
      const headers = { Authorization: `Bearer ${state.key}` };
      if (state.lastEventId !== null) headers["Last-Event-ID"] = String(state.lastEventId);
      const response = await fetch("/api/v1/alerts/stream", { headers, signal: controller.signal });
      if (response.status === 401) throw new Unauthorized();
      if (!response.ok) throw new Error(response.statusText);
      setStreamState("live", false);
      showBanner("");
      delay = 1000;
      const ended = await readEvents(response.body);
      if (ended === "reset") { state.lastEventId = null; await loadAlerts(); }
      if (ended === "unauthorized") throw new Unauthorized();
    } catch (error) {
      if (error instanceof Unauthorized) { signedOut(t("key_revoked")); return; }
      if (controller.signal.aborted) return;
      setStreamState("reconnecting", true);
      showBanner(t("stream_lost"));
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 15000);
  }
}

async function readEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return "closed";
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message", data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) event = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      if (event === "alert" && data) applyChange(JSON.parse(data));
      else if (event === "reset" || event === "resync" || event === "unauthorized") return event;
    }
  }
}

// --- fleet ---------------------------------------------------------------------------
function countsTable(title, rows) {
  const columns = ["devices", "online", "offline", "never_seen", "maintenance"];
  return el("table", { "data-testid": `fleet-${title}` },
    el("thead", {}, el("tr", {}, el("th", {}, t(title)), columns.map((c) => el("th", { class: "num" }, t(c))))),
    el("tbody", {}, rows.map(([name, counts]) => el("tr", { "data-key": name },
      el("td", {}, t(name)), columns.map((c) => el("td", { class: "num", "data-col": c }, counts[c]))))));
}

async function loadFleet() {
  const box = $("#fleet-body");
  box.replaceChildren(el("p", { class: "empty" }, t("loading")));
  try {
    const fleet = await api("/api/v1/stats/fleet");
    if (!fleet.total.devices) { box.replaceChildren(el("p", { class: "empty" }, t("no_devices"))); return; }
    box.replaceChildren(
      countsTable("kind", [["all", fleet.total], ...Object.entries(fleet.by_kind)]),
      countsTable("jurisdiction", Object.entries(fleet.by_jurisdiction)),
      el("table", { "data-testid": "fleet-sites" },
        el("thead", {}, el("tr", {}, ["site", "name", "jurisdiction", "devices", "open_alerts", "critical"]
          .map((c) => el("th", {}, t(c))))),
        el("tbody", {}, fleet.sites.map((s) => el("tr", {},
          el("td", {}, s.site_id), el("td", {}, s.name), el("td", {}, s.jurisdiction),
          el("td", { class: "num" }, s.devices), el("td", { class: "num" }, s.open_alerts),
          el("td", { class: "num" }, s.open_critical))))));
  } catch (error) { handleError(error, box); }
}

// --- duty checks ---------------------------------------------------------------------
async function startDutyCheck(event) {
  event.preventDefault();
  const body = { [$("#duty-target").value]: $("#duty-value").value.trim() };
  const box = $("#duty-body");
  try {
    const batch = await api("/api/v1/duty-checks", { method: "POST", body: JSON.stringify(body) });
    clearInterval(state.dutyTimer);
    const refresh = async () => {
      const list = await api(`/api/v1/duty-checks?batch_id=${encodeURIComponent(batch.batch_id)}`);
      renderDuty(list.data);
      if (list.data.every((c) => c.status !== "pending")) clearInterval(state.dutyTimer);
    };
    renderDuty(batch.checks);
    state.dutyTimer = setInterval(() => refresh().catch(handleError), 2000);
  } catch (error) { handleError(error, box); }
}

function renderDuty(checks) {
  state.lastDuty = checks;
  $("#duty-body").replaceChildren(el("table", {},
    el("thead", {}, el("tr", {}, ["device_id", "site", "requested", "status", "response"].map((c) => el("th", {}, t(c))))),
    el("tbody", {}, checks.map((c) => el("tr", { "data-testid": "duty-row", "data-status": c.status },
      el("td", {}, c.device_id), el("td", {}, c.site_id),
      el("td", {}, new Date(c.requested_at).toLocaleTimeString()),
      el("td", { class: c.status === "missed" ? "state-bad" : "" }, t(c.status)),
      el("td", { class: "num" }, c.response_s === null ? "—" : `${c.response_s.toFixed(1)} s`))))));
}

// --- device ----------------------------------------------------------------------------
function openDevice(deviceId) {
  $("#device-id").value = deviceId;
  switchTab("device");
  loadDevice(deviceId);
}

function chart(field, points) {
  const values = points.map((p) => [Date.parse(p.ts), p.values[field]]).filter(([, v]) => typeof v === "number");
  if (values.length < 2) return null;
  const [w, h, pad] = [600, 160, 24];
  const xs = values.map(([x]) => x), ys = values.map(([, y]) => y);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const sx = (x) => pad + (w - 2 * pad) * (x - x0) / Math.max(1, x1 - x0);
  const sy = (y) => h - pad - (h - 2 * pad) * (y - y0) / Math.max(1e-9, y1 - y0);
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.innerHTML = `<polyline fill="none" stroke="#3e9bff" stroke-width="2" points="${values.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" ")}"/>`
    + `<text x="${pad}" y="14" fill="#8a97a6" font-size="12">${y1.toFixed(1)}</text>`
    + `<text x="${pad}" y="${h - 6}" fill="#8a97a6" font-size="12">${y0.toFixed(1)}</text>`;
  return el("div", { class: "chart", "data-testid": "chart", "data-field": field }, el("div", { class: "muted" }, field), svg);
}

async function loadDevice(deviceId) {
  state.device = deviceId;
  const box = $("#device-body");
  box.replaceChildren(el("p", { class: "empty" }, t("loading")));
  try {
    const device = await api(`/api/v1/devices/${encodeURIComponent(deviceId)}`);
    const series = await api(`/api/v1/devices/${encodeURIComponent(deviceId)}/telemetry`);
    const charts = (CHART_FIELDS[device.kind] || []).map((f) => chart(f, series.points)).filter(Boolean);
    const status = device.status || {};
    box.replaceChildren(
      el("h2", {}, `${device.id} · ${t(device.kind)}`),
      el("p", { "data-testid": "device-status" },
        `${device.site_name} · ${device.location} · ${t(device.state)} · `,
        el("span", { class: status.online ? "state-ok" : "state-bad" }, t(status.online ? "online" : (status.last_seen_at ? "offline" : "never_seen"))),
        status.last_seen_at ? ` · ${t("last_seen")} ${new Date(status.last_seen_at).toLocaleString()}` : ""),
      charts.length ? el("div", { class: "grid2" }, charts) : el("p", { class: "empty" }, t("no_data")));
  } catch (error) { handleError(error, box); }
}

// --- shell -----------------------------------------------------------------------------
function handleError(error, box) {
  if (error instanceof Unauthorized) { signedOut(t("key_revoked")); return; }
  if (box) box.replaceChildren(el("p", { class: "empty error" }, `${t("error")}: ${error.message}`));
  else showBanner(`${t("error")}: ${error.message}`);
}

function relabel() {
  // Re-render what was built from data, so every label follows the language.
  renderBoard();
  const stream = $("#stream-state");
  if (stream.dataset.state) setStreamState(stream.dataset.state, stream.className === "state-bad");
  if (state.lastDuty) renderDuty(state.lastDuty);
  if (!$("#fleet").hidden) loadFleet();
  if (state.device) loadDevice(state.device);
}

function switchTab(name) {
  for (const button of document.querySelectorAll("#tabs button")) {
    button.classList.toggle("active", button.dataset.tab === name);
  }
  for (const panel of document.querySelectorAll("[data-panel]")) panel.hidden = panel.id !== name;
  if (name === "fleet") loadFleet();
}

async function start() {
  $("#sign-in").hidden = true;
  $("#tabs").hidden = $("#sign-out").hidden = false;
  switchTab("board");
  try {
    await loadAlerts();
  } catch (error) {
    if (error instanceof Unauthorized) { signedOut(t("bad_key")); return; }
    handleError(error, $("#alerts"));
  }
  follow();
}

function init() {
  const categories = $("#f-category");
  for (const name of CATEGORIES) categories.append(el("option", { value: name, "data-i18n": name }, t(name)));
  applyLabels();
  $("#lang").addEventListener("click", () => {
    state.lang = state.lang === "zh" ? "en" : "zh";
    localStorage.setItem("fw.lang", state.lang);
    applyLabels();
    relabel();
  });
  $("#sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.key = $("#key").value.trim();
    sessionStorage.setItem("fw.key", state.key);
    showBanner("");
    start();
  });
  $("#sign-out").addEventListener("click", () => signedOut(""));
  for (const button of document.querySelectorAll("#tabs button")) {
    button.addEventListener("click", () => switchTab(button.dataset.tab));
  }
  for (const id of ["#f-severity", "#f-category", "#f-jurisdiction"]) $(id).addEventListener("input", renderBoard);
  $("#resolve-form").addEventListener("submit", resolveConfirmed);
  $("#duty-form").addEventListener("submit", startDutyCheck);
  $("#device-form").addEventListener("submit", (event) => { event.preventDefault(); loadDevice($("#device-id").value.trim()); });
  document.addEventListener("pointerdown", () => {
    if (!state.audio) state.audio = new AudioContext();
  }, { once: true });
  if (state.key) start();
}

init();
