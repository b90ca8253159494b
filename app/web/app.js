// ACS Bridge operator console: live calls over Server-Sent Events, actions over the control API.
// Every piece of data reaches the page through textContent or attributes, never as HTML.
"use strict";

(() => {
  const KEY_STORAGE = "acs-bridge.control-api-key";
  const API = {
    config: "api/console/config",
    events: "api/events",
    call: (id) => `api/calls/${encodeURIComponent(id)}`,
    emulatorCalls: "api/emulator/calls",
    agents: "api/agents",
  };
  const LEVEL_STALE_MS = 1000;   // a meter with no news for this long falls to zero
  const DETAIL_CHARS = 160;      // tool arguments and results are cut to this in the list
  const MAX_RETRY_MS = 15000;
  const TOAST_MS = 4500;

  const state = {
    calls: new Map(),      // call_connection_id -> CallRecord (as JSON)
    levels: new Map(),     // call_connection_id -> { rms, at }
    roundTrips: new Map(), // call_connection_id -> ms (softphone calls)
    rows: new Map(),       // call_connection_id -> row view
    order: [],
    selected: null,
    key: sessionStorage.getItem(KEY_STORAGE),
    config: null,
    source: null,
    retryMs: 1000,
    retryTimer: null,
    keyPrompt: null,
    phone: null,
  };

  const $ = (id) => document.getElementById(id);
  const numberFormat = new Intl.NumberFormat();

  // --- DOM helpers -------------------------------------------------------------------------
  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(props)) {
      if (value === undefined || value === null) continue;
      if (name === "className") node.className = value;
      else if (name === "text") node.textContent = value;
      else if (name === "dataset") Object.assign(node.dataset, value);
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value);
    }
    for (const child of children) node.append(child);
    return node;
  }

  function setText(node, text) {
    const value = text == null ? "" : String(text);
    if (node.textContent !== value) node.textContent = value;
  }

  // --- formatting --------------------------------------------------------------------------
  const CONNECTION_TONES = { connecting: "info", connected: "ok", disconnecting: "warn", disconnected: "idle" };
  const MEDIA_TONES = { disabled: "idle", starting: "warn", active: "ok", stopping: "warn", stopped: "idle", failed: "bad" };
  const LABELS = {
    connecting: "Connecting", connected: "Connected", disconnecting: "Disconnecting", disconnected: "Ended",
    disabled: "Off", starting: "Starting", active: "Streaming", stopping: "Stopping", stopped: "Stopped", failed: "Failed",
  };

  function label(value) { return LABELS[value] || String(value || "—"); }

  const BACKEND_LABELS = { connecting: "Connecting", ready: "Ready", reconnecting: "Reconnecting", failed: "Failed", closed: "Closed" };
  const BACKEND_TONES = { connecting: "info", ready: "ok", reconnecting: "warn", failed: "bad", closed: "idle" };
  const ENDED_BY = {
    caller: "the caller", agent: "the agent", api: "the control API", failover: "failover (no working backend)",
    shutdown: "shutdown", acs: "ACS (failure)",
  };
  // Backends that never produce transcript lines: the panel says so instead of staying blank.
  const NO_TRANSCRIPT = {
    echo: "The echo backend plays the caller back; it does not transcribe.",
    recorder: "The recorder backend writes the caller's audio to a WAV; it does not transcribe.",
  };
  const ACTION_LABELS = { hang_up: "Hang up", transfer: "Transfer", send_dtmf: "DTMF" };
  const SPEAKERS = { caller: "Caller", agent: "Agent" };
  const OUTCOME_TONES = { requested: "warn", accepted: "info", completed: "ok", failed: "bad", ok: "ok", error: "bad" };

  function trimmed(text, limit = DETAIL_CHARS) {
    const value = text == null ? "" : String(text);
    return value.length > limit ? `${value.slice(0, limit - 1)}…` : value;
  }

  function milliseconds(ms) {
    const value = Number(ms);
    if (!Number.isFinite(value)) return "";
    return value >= 1000 ? `${(value / 1000).toFixed(1)} s` : `${Math.round(value)} ms`;
  }

  function time(iso) {
    const ms = Date.parse(iso);
    if (Number.isNaN(ms)) return "";
    return new Date(ms).toLocaleTimeString([], { hour12: false });
  }

  function dateTime(iso) {
    const ms = Date.parse(iso);
    return Number.isNaN(ms) ? null : new Date(ms).toLocaleString([], { hour12: false });
  }

  function duration(call, now) {
    const start = Date.parse(call.connected_at || call.created_at);
    if (Number.isNaN(start)) return "—";
    const endIso = call.disconnected_at;
    const end = endIso ? Date.parse(endIso) : now;
    let s = Math.max(0, Math.floor((end - start) / 1000));
    const h = Math.floor(s / 3600); s -= h * 3600;
    const m = Math.floor(s / 60); s -= m * 60;
    const two = (n) => String(n).padStart(2, "0");
    return h ? `${h}:${two(m)}:${two(s)}` : `${two(m)}:${two(s)}`;
  }

  function callerName(call) {
    return call.caller_display_name || call.caller || "Unknown caller";
  }

  function callerSub(call) {
    const arrow = call.direction === "outbound" ? "↗" : "↘";
    const from = call.caller_display_name ? call.caller : null;
    const parts = [from, call.callee ? `→ ${call.callee}` : null, call.agent ? `· ${call.agent}` : null].filter(Boolean);
    return `${arrow} ${parts.join(" ") || call.direction || ""}`.trim();
  }

  function isLive(call) { return call.connection_state !== "disconnected"; }

  function lastEvent(call) {
    const events = call.recent_events || [];
    return events.length ? events[events.length - 1] : null;
  }

  // Meter: RMS to a 60 dB scale, so quiet speech still moves it.
  function meterFraction(rms) {
    if (!(rms > 0)) return 0;
    const db = 20 * Math.log10(rms);
    return Math.min(1, Math.max(0, (db + 60) / 60));
  }

  // --- rows ----------------------------------------------------------------------------------
  function createRow(id) {
    const view = {};
    view.name = el("div", { className: "caller-name" });
    view.sub = el("div", { className: "caller-sub" });
    view.connection = el("span", { className: "badge" });
    view.media = el("span", { className: "badge" });
    view.backend = el("span", { className: "badge badge-small backend-badge" });
    view.endedBy = el("div", { className: "caller-sub ended-by" });
    view.framesIn = el("span");
    view.framesOut = el("span");
    view.meterFill = el("div", { className: "meter-fill" });
    view.meter = el("div", { className: "meter", role: "meter", "aria-valuemin": "0", "aria-valuemax": "1", "aria-valuenow": "0", "aria-label": "Caller audio level" }, view.meterFill);
    view.duration = el("span", { className: "mono" });
    view.eventType = el("div", { className: "last-event-type" });
    view.eventTime = el("div", { className: "last-event-time" });
    view.start = el("button", { className: "btn btn-small", type: "button", title: "Start media streaming", dataset: { action: "start" }, text: "Start" });
    view.stop = el("button", { className: "btn btn-small", type: "button", title: "Stop media streaming", dataset: { action: "stop" }, text: "Stop" });
    view.hangup = el("button", { className: "btn btn-small btn-danger", type: "button", title: "Hang up the call", dataset: { action: "hangup" }, text: "Hang up" });
    view.start.addEventListener("click", (e) => { e.stopPropagation(); startMedia(id, view.start); });
    view.stop.addEventListener("click", (e) => { e.stopPropagation(); stopMedia(id, view.stop); });
    view.hangup.addEventListener("click", (e) => { e.stopPropagation(); hangUp(id, view.hangup); });
    view.row = el("tr", { tabindex: "0", dataset: { callId: id }, "aria-selected": "false" },
      el("td", {}, view.name, view.sub),
      el("td", {}, view.connection, view.endedBy),
      el("td", { className: "media-cell" }, view.media, view.backend),
      el("td", { className: "num frames mono" }, view.framesIn, el("span", { className: "sep", text: "/" }), view.framesOut),
      el("td", {}, view.meter),
      el("td", { className: "num" }, view.duration),
      el("td", { className: "last-event" }, view.eventType, view.eventTime),
      el("td", {}, el("div", { className: "actions" }, view.start, view.stop, view.hangup)),
    );
    view.row.addEventListener("click", () => select(id));
    view.row.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); select(id); }
    });
    return view;
  }

  function updateRow(view, call) {
    setText(view.name, callerName(call));
    view.name.title = callerName(call);
    setText(view.sub, callerSub(call));
    setText(view.connection, label(call.connection_state));
    view.connection.dataset.tone = CONNECTION_TONES[call.connection_state] || "idle";
    setText(view.media, label(call.media_state));
    view.media.dataset.tone = MEDIA_TONES[call.media_state] || "idle";
    if (call.media_failure && call.media_failure.message) view.media.title = call.media_failure.message;
    const backend = call.backend;
    view.backend.hidden = !backend;
    if (backend) {
      setText(view.backend, `${backend.name} · ${BACKEND_LABELS[backend.state] || backend.state}`);
      view.backend.dataset.tone = BACKEND_TONES[backend.state] || "idle";
      view.backend.title = backend.detail || "";
    }
    setText(view.endedBy, call.ended_by ? `by ${call.ended_by}` : "");
    const media = call.media || {};
    setText(view.framesIn, numberFormat.format(media.frames_in || 0));
    setText(view.framesOut, numberFormat.format(media.frames_out || 0));
    setText(view.duration, duration(call, Date.now()));
    const event = lastEvent(call);
    setText(view.eventType, event ? event.type : "—");
    view.eventType.title = event && event.detail ? event.detail : "";
    setText(view.eventTime, event ? time(event.time) : "");
    const connected = call.connection_state === "connected";
    view.start.disabled = !(connected && ["disabled", "stopped", "failed"].includes(call.media_state));
    view.stop.disabled = !(connected && ["active", "starting"].includes(call.media_state));
    view.hangup.disabled = !["connecting", "connected"].includes(call.connection_state);
    view.row.classList.toggle("ended", !isLive(call));
    view.row.setAttribute("aria-selected", String(state.selected === call.call_connection_id));
    drawLevel(call.call_connection_id, view);
  }

  function drawLevel(id, view) {
    const level = state.levels.get(id);
    const fresh = level && Date.now() - level.at < LEVEL_STALE_MS;
    const fraction = fresh ? meterFraction(level.rms) : 0;
    view.meterFill.style.transform = `scaleX(${fraction.toFixed(3)})`;
    view.meter.dataset.zone = fraction > 0.95 ? "clip" : fraction > 0.8 ? "hot" : "ok";
    view.meter.setAttribute("aria-valuenow", fresh ? level.rms.toFixed(3) : "0");
  }

  // --- rendering ------------------------------------------------------------------------------
  function visibleCalls() {
    const showEnded = $("show-ended").checked;
    return [...state.calls.values()]
      .filter((call) => showEnded || isLive(call))
      .sort((a, b) => (isLive(b) - isLive(a)) || (Date.parse(b.created_at) - Date.parse(a.created_at)));
  }

  function render() {
    const calls = visibleCalls();
    const body = $("calls-body");
    const ids = calls.map((call) => call.call_connection_id);
    for (const [id, view] of state.rows) {
      if (!ids.includes(id)) { view.row.remove(); state.rows.delete(id); }
    }
    for (const call of calls) {
      const id = call.call_connection_id;
      let view = state.rows.get(id);
      if (!view) { view = createRow(id); state.rows.set(id, view); }
      updateRow(view, call);
    }
    if (ids.join("\n") !== state.order.join("\n") || body.children.length !== ids.length) {
      for (const id of ids) body.append(state.rows.get(id).row);  // append moves: keeps focus-free order
      state.order = ids;
    }
    $("empty").hidden = calls.length > 0;
    renderSummary();
    renderDetails();
  }

  function renderSummary() {
    let active = 0, streaming = 0, framesIn = 0, framesOut = 0;
    for (const call of state.calls.values()) {
      if (isLive(call)) active += 1;
      if (call.media_state === "active") streaming += 1;
      framesIn += (call.media && call.media.frames_in) || 0;
      framesOut += (call.media && call.media.frames_out) || 0;
    }
    setText($("stat-active"), numberFormat.format(active));
    setText($("stat-streaming"), numberFormat.format(streaming));
    setText($("stat-in"), numberFormat.format(framesIn));
    setText($("stat-out"), numberFormat.format(framesOut));
  }

  function renderDetails() {
    const call = state.selected && state.calls.get(state.selected);
    $("details").hidden = !call;
    document.querySelector(".workspace").classList.toggle("with-details", Boolean(call));
    if (!call) return;
    const media = call.media || {};
    const failure = call.media_failure;
    const fields = [
      ["Call id", call.call_connection_id, "mono"],
      ["Correlation id", call.correlation_id, "mono"],
      ["Server call id", call.server_call_id, "mono"],
      ["Direction", call.direction],
      ["Caller", [call.caller_display_name, call.caller].filter(Boolean).join(" · ")],
      ["Callee", call.callee],
      ["Agent", call.agent],
      ["Call state", label(call.connection_state)],
      ["Media state", label(call.media_state)],
      ["Media failure", failure ? [failure.status_details, failure.sub_code ? `${failure.code}/${failure.sub_code}` : failure.code, failure.message].filter(Boolean).join(" · ") : null],
      // ACS's subcode in words, with what to do (app/calls/acs_codes.json).
      ["What it means", failure ? failure.explanation : null],
      ["Backend", backendText(call.backend)],
      ["Sample rate", media.sample_rate ? `${media.sample_rate} Hz` : null],
      ["Frames in / out", `${numberFormat.format(media.frames_in || 0)} / ${numberFormat.format(media.frames_out || 0)}`],
      ["Malformed / dropped", `${media.malformed_frames || 0} / ${media.dropped_frames || 0}`],
      ["Round trip", state.roundTrips.has(call.call_connection_id) ? milliseconds(state.roundTrips.get(call.call_connection_id)) : null],
      ["Turn latency", turnLatency(call.metrics)],
      ["Last turns, newest first", turnBreakdown(call.metrics), "turns"],
      ["Media instance", media.instance_id],
      ["DTMF", media.dtmf],
      ["Started", dateTime(call.created_at)],
      ["Ended", dateTime(call.disconnected_at)],
      ["Ended by", call.ended_by ? ENDED_BY[call.ended_by] || call.ended_by : null],
      ["End reason", call.disconnect_reason || media.close_reason],
    ];
    const list = $("details-fields");
    list.replaceChildren(...fields.filter(([, value]) => value !== null && value !== undefined && value !== "")
      .flatMap(([name, value, cls]) => [el("dt", { text: name }), el("dd", { className: cls, text: String(value) })]));
    renderTranscript(call);
    renderList("details-actions", call.actions, actionItem);
    const events = [...(call.recent_events || [])].reverse();
    $("details-events").replaceChildren(...(events.length ? events.map((event) => el("li", {},
      el("span", { className: "event-time", text: time(event.time) }),
      el("span", { className: "event-type", text: event.type }),
      event.detail ? el("span", { className: "event-detail", text: event.detail }) : "",
    )) : [el("li", { className: "events-empty", text: "No events yet" })]));
  }

  function backendText(backend) {
    if (!backend) return null;
    const attempts = backend.attempts ? `${backend.attempts} failed attempt${backend.attempts === 1 ? "" : "s"}` : null;
    const since = backend.since ? `since ${time(backend.since)}` : null;
    return [backend.name, BACKEND_LABELS[backend.state] || backend.state, backend.detail, attempts, since]
      .filter(Boolean).join(" · ");
  }

  function turnLatency(metrics) {
    if (!metrics || metrics.turn_latency_ms_last == null) return null;
    const p50 = metrics.turn_latency_ms_p50 != null ? ` (median ${milliseconds(metrics.turn_latency_ms_p50)})` : "";
    return `${milliseconds(metrics.turn_latency_ms_last)}${p50}`;
  }

  // The latest turns, newest first: the whole, which is the bridge's share each way (in: the
  // caller's slowest frame, out: the response's first audio) and the backend's, e.g.
  // "640 ms = in 1 + backend 612 + out 27". Shares under a millisecond read "<1".
  function turnBreakdown(metrics) {
    const turns = metrics && metrics.turn_breakdown;
    if (!Array.isArray(turns) || !turns.length) return null;
    const share = (ms) => (ms < 1 ? "<1" : String(Math.round(ms)));
    return turns.slice(-3).reverse().map((turn) =>
      `${milliseconds(turn.turn_ms)} = in ${share(turn.inbound_ms)} + backend ${share(turn.backend_ms)} + out ${share(turn.outbound_ms)}`,
    ).join("\n");
  }

  // Both sides' lines and the agent's tool calls, oldest first, as the conversation went.
  function renderTranscript(call) {
    const lines = (call.transcript || []).map((line) => ({ at: Date.parse(line.time), node: () => transcriptItem(line) }));
    const tools = (call.tool_calls || []).map((tool) => ({ at: Date.parse(tool.time), node: () => toolCallItem(tool) }));
    const items = [...lines, ...tools].sort((a, b) => a.at - b.at);
    const list = $("details-transcript");
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 24;
    const backend = call.backend ? call.backend.name : null;
    const empty = NO_TRANSCRIPT[backend] || (isLive(call) ? "No lines yet: they appear as both sides speak." : "Nothing was said.");
    const signature = `${call.call_connection_id}:${items.length}:${items.length ? items[items.length - 1].at : 0}:${empty}`;
    if (list.dataset.signature === signature) return;  // unchanged: keep the reader's selection
    list.dataset.signature = signature;
    list.replaceChildren(...(items.length ? items.map((item) => item.node()) : [el("li", { className: "events-empty", text: empty })]));
    if (atBottom) list.scrollTop = list.scrollHeight;  // follow the conversation, unless scrolled up
  }

  function transcriptItem(line) {
    const role = String(line.role || "");
    return el("li", { className: "transcript-line", dataset: { role } },
      el("span", { className: "event-time", text: time(line.time) }),
      el("span", { className: "event-head" },
        el("span", { className: "speaker", text: SPEAKERS[role] || role || "—" }),
        line.interrupted ? el("span", { className: "badge badge-small", dataset: { tone: "warn" }, text: "interrupted" }) : ""),
      el("span", { className: "event-detail transcript-text", text: String(line.text || "") }),
    );
  }

  // A details section (newest first), hidden while the call has nothing for it.
  function renderList(id, items, item) {
    const list = Array.isArray(items) ? [...items].reverse() : [];
    $(`${id}-section`).hidden = list.length === 0;
    $(id).replaceChildren(...list.map(item));
  }

  function outcomeBadge(outcome) {
    return el("span", { className: "badge badge-small", dataset: { tone: OUTCOME_TONES[outcome] || "idle" }, text: String(outcome || "—") });
  }

  function actionItem(action) {
    const by = action.requested_by ? `by ${action.requested_by}` : null;
    return el("li", { className: "call-action", dataset: { kind: String(action.kind || "") } },
      el("span", { className: "event-time", text: time(action.requested_at) }),
      el("span", { className: "event-head" },
        el("span", { className: "event-type", text: ACTION_LABELS[action.kind] || String(action.kind || "—") }),
        outcomeBadge(action.outcome)),
      el("span", { className: "event-detail mono", text: [action.detail, by].filter(Boolean).join(" · ") }),
      action.outcome_detail ? el("span", { className: "event-detail", text: action.outcome_detail }) : "",
    );
  }

  function toolCallItem(tool) {
    const args = tool.arguments == null ? "" : String(tool.arguments);
    const result = tool.result == null ? "" : String(tool.result);
    return el("li", { className: "tool-call", dataset: { tool: String(tool.name || "") } },
      el("span", { className: "event-time", text: time(tool.time) }),
      el("span", { className: "event-head" },
        el("span", { className: "event-type mono", text: String(tool.name || "—") }),
        outcomeBadge(tool.outcome),
        el("span", { className: "tool-duration", text: milliseconds(tool.duration_ms) })),
      args ? el("span", { className: "event-detail mono tool-arguments", title: trimmed(args, 2000), text: trimmed(args) }) : "",
      result ? el("span", { className: "event-detail tool-result", title: trimmed(result, 2000), text: `→ ${trimmed(result)}` }) : "",
    );
  }

  function select(id) {
    state.selected = state.selected === id ? null : id;
    render();
  }

  // --- messages -------------------------------------------------------------------------------
  function handle(message) {
    switch (message.type) {
      case "snapshot":
        state.calls = new Map(message.calls.map((call) => [call.call_connection_id, call]));
        render();
        break;
      case "call":
        upsert(message.call);
        break;
      case "level": {
        state.levels.set(message.call_connection_id, { rms: Number(message.rms) || 0, at: Date.now() });
        const view = state.rows.get(message.call_connection_id);
        if (view) drawLevel(message.call_connection_id, view);
        break;
      }
      case "round_trip": {
        const ms = Number(message.ms);
        if (!Number.isFinite(ms)) break;
        state.roundTrips.set(message.call_connection_id, ms);
        if (state.phone) state.phone.showRoundTrip(message.call_connection_id, ms);
        if (state.selected === message.call_connection_id) renderDetails();
        break;
      }
      case "removed":
        state.calls.delete(message.call_connection_id);
        state.levels.delete(message.call_connection_id);
        state.roundTrips.delete(message.call_connection_id);
        if (state.selected === message.call_connection_id) state.selected = null;
        render();
        break;
      default:
        break;  // newer server, older page: ignore what we do not know
    }
  }

  function upsert(call) {
    const known = state.calls.get(call.call_connection_id);
    if (known && Date.parse(known.updated_at) > Date.parse(call.updated_at)) return;  // stale
    state.calls.set(call.call_connection_id, call);
    render();
  }

  // --- event stream ---------------------------------------------------------------------------
  function eventsUrl() {
    const url = new URL(API.events, document.baseURI);
    if (state.key) url.searchParams.set("key", state.key);
    return url;
  }

  function connect() {
    clearTimeout(state.retryTimer);
    if (state.source) state.source.close();
    setStatus("connecting", "Connecting…");
    const source = new EventSource(eventsUrl());
    state.source = source;
    source.onopen = () => { state.retryMs = 1000; setStatus("live", "Live"); };
    source.onmessage = (event) => {
      try { handle(JSON.parse(event.data)); } catch (err) { console.error("bad event", err); }
    };
    source.onerror = () => {
      if (state.source !== source) return;
      if (source.readyState === EventSource.CONNECTING) { setStatus("reconnecting", "Reconnecting…"); return; }
      source.close();  // refused outright (e.g. 401): find out why
      diagnose();
    };
  }

  async function diagnose() {
    // EventSource does not expose the HTTP status: ask once with fetch and stop reading.
    const abort = new AbortController();
    let status = 0;
    try {
      const response = await fetch(eventsUrl(), { signal: abort.signal, cache: "no-store" });
      status = response.status;
    } catch (err) {
      status = 0;
    } finally {
      abort.abort();
    }
    if (status === 401) {
      setStatus("locked", "Key required");
      if (await askKey(state.key ? "That key was not accepted." : null)) connect();
      return;
    }
    setStatus("offline", "Offline");
    state.retryTimer = setTimeout(connect, state.retryMs);
    state.retryMs = Math.min(state.retryMs * 2, MAX_RETRY_MS);
  }

  function setStatus(kind, text) {
    const pill = $("conn-status");
    pill.dataset.state = kind;
    setText(pill.querySelector(".conn-text"), text);
  }

  // --- control API ----------------------------------------------------------------------------
  async function api(path, init = {}, retried = false) {
    const headers = new Headers(init.headers || {});
    if (state.key) headers.set("X-API-Key", state.key);
    const response = await fetch(path, { ...init, headers, cache: "no-store" });
    if (response.status === 401 && !retried) {
      if (await askKey(state.key ? "That key was not accepted." : null)) {
        connect();
        return api(path, init, true);
      }
    }
    return response;
  }

  async function readError(response) {
    try {
      const body = await response.json();
      if (body && body.error && body.error.message) return body.error.message;
    } catch (err) { /* not JSON */ }
    return `HTTP ${response.status}`;
  }

  async function act(button, path, init, doneText) {
    button.disabled = true;
    button.classList.add("busy");
    try {
      const response = await api(path, init);
      if (!response.ok) { toast(await readError(response), "bad"); return; }
      const body = await response.json().catch(() => null);
      if (body && body.call && body.call.call_connection_id) upsert(body.call);
      toast(doneText, "ok");
    } catch (err) {
      toast(`Request failed: ${err.message}`, "bad");
    } finally {
      button.classList.remove("busy");
      render();  // buttons follow the call's state again
    }
  }

  const startMedia = (id, button) => act(button, `${API.call(id)}/media/start`, { method: "POST" }, "Media streaming requested");
  const stopMedia = (id, button) => act(button, `${API.call(id)}/media/stop`, { method: "POST" }, "Stop of media streaming requested");
  const hangUp = (id, button) => act(button, API.call(id), { method: "DELETE" }, "Hang-up requested");

  async function placeTestCall(button) {
    const to = $("call-line").value;
    await act(button, API.emulatorCalls, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(to ? { to } : {}),
    }, "Test call placed");
    button.disabled = false;
  }

  // The lines a test or browser call can ring: each route of AGENTS_FILE, by its agent.
  async function loadLines() {
    const select = $("call-line");
    const response = await api(API.agents).catch(() => null);
    if (!response || !response.ok) return;
    const agents = await response.json();
    select.replaceChildren(el("option", { value: "", text: agents.default ? `Any line (${agents.default})` : "Any line" }));
    for (const [line, agent] of Object.entries(agents.routes)) {
      select.append(el("option", { value: line, text: `${line} (${agent})` }));
    }
    select.hidden = !state.config.emulator || Object.keys(agents.routes).length === 0;
  }

  // --- key dialog -----------------------------------------------------------------------------
  function askKey(error) {
    if (state.keyPrompt) return state.keyPrompt;
    const dialog = $("key-dialog");
    const input = $("key-input");
    const errorLine = $("key-error");
    setText(errorLine, error || "");
    errorLine.hidden = !error;
    input.value = "";
    state.keyPrompt = new Promise((resolve) => {
      const finish = (saved) => {
        $("key-form").removeEventListener("submit", onSubmit);
        $("key-cancel").removeEventListener("click", onCancel);
        dialog.removeEventListener("cancel", onCancel);
        if (dialog.open) dialog.close();
        state.keyPrompt = null;
        resolve(saved);
      };
      const onSubmit = (event) => {
        event.preventDefault();
        const key = input.value.trim();
        if (!key) return;
        state.key = key;
        sessionStorage.setItem(KEY_STORAGE, key);
        finish(true);
      };
      const onCancel = (event) => { event.preventDefault(); finish(false); };
      $("key-form").addEventListener("submit", onSubmit);
      $("key-cancel").addEventListener("click", onCancel);
      dialog.addEventListener("cancel", onCancel);
      dialog.showModal();
      input.focus();
    });
    return state.keyPrompt;
  }

  // --- toasts ---------------------------------------------------------------------------------
  function toast(text, tone = "info") {
    const node = el("div", { className: "toast", role: tone === "bad" ? "alert" : "status", dataset: { tone }, text });
    $("toasts").append(node);
    setTimeout(() => node.remove(), TOAST_MS);
  }

  // --- start ----------------------------------------------------------------------------------
  async function loadConfig() {
    for (let delay = 1000; ; delay = Math.min(delay * 2, MAX_RETRY_MS)) {
      try {
        const response = await fetch(API.config, { cache: "no-store" });
        if (response.ok) return await response.json();
      } catch (err) { /* server not up yet */ }
      setStatus("offline", "Offline");
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }

  async function start() {
    $("show-ended").addEventListener("change", render);
    $("details-close").addEventListener("click", () => { state.selected = null; render(); });
    $("change-key").addEventListener("click", async () => { if (await askKey(null)) connect(); });
    $("place-call").addEventListener("click", (event) => placeTestCall(event.currentTarget));
    state.phone = window.AcsBridgePhone.create({
      key: () => state.key,
      line: () => $("call-line").value,
      toast,
      onCall: (id) => { state.selected = id; render(); },  // its details show the transcript
    });
    $("browser-call").addEventListener("click", () => state.phone.start());
    // Meters fall back to zero when levels stop; durations tick. Both are local: no polling.
    setInterval(() => { for (const [id, view] of state.rows) drawLevel(id, view); }, 250);
    setInterval(() => {
      const now = Date.now();
      for (const [id, view] of state.rows) {
        const call = state.calls.get(id);
        if (call && isLive(call)) setText(view.duration, duration(call, now));
      }
    }, 1000);

    state.config = await loadConfig();
    $("place-call").hidden = !state.config.emulator;
    $("browser-call").hidden = !state.config.emulator;
    $("change-key").hidden = !state.config.control_api_key_required;
    if (state.config.control_api_key_required && !state.key) {
      setStatus("locked", "Key required");
      if (!(await askKey(null))) return;  // the "API key" button asks again
    }
    connect();
    loadLines();
  }

  start();
})();
