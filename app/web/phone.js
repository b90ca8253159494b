// ACS Bridge console softphone: the browser's microphone and speaker as the caller of a call
// placed through the embedded ACS emulator. Audio runs in phone-worklet.js; this file owns the
// socket (api/console/phone), the keypad and the panel. Data reaches the page as text only.
"use strict";

(() => {
  const WORKLET = "console/phone-worklet.js";
  const SOCKET = "api/console/phone";
  const TONES = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#"];
  const CLOSE_REASONS = {
    4401: "The control API key was not accepted.",
    4403: "The softphone only works from the console's own page.",
    4404: "The softphone needs the embedded ACS emulator as the service's ACS.",
    4502: "The call could not be placed.",
  };
  const STATUS = {
    calling: "Calling…", connected: "Connected", ended: "Ended", unavailable: "No microphone",
  };

  const $ = (id) => document.getElementById(id);

  function setText(node, text) {
    const value = text == null ? "" : String(text);
    if (node.textContent !== value) node.textContent = value;
  }

  // One call from this browser at a time; `hooks` come from the console (app.js).
  function createPhone(hooks) {
    let call = null;  // { ws, context, stream, playback, analyser, id, ended }

    const panel = $("phone");
    const status = $("phone-status");

    function show(state, detail) {
      panel.hidden = false;
      panel.dataset.state = state;
      setText(status, STATUS[state] || state);
      const tones = { connected: "ok", calling: "warn", unavailable: "bad" };
      status.dataset.tone = tones[state] || "idle";
      setText($("phone-detail"), detail || "");
      const live = state === "calling" || state === "connected";
      $("phone-hangup").disabled = !live;
      for (const key of $("phone-keypad").querySelectorAll("button")) key.disabled = state !== "connected";
      $("phone-call").disabled = live;
    }

    function showBuffer(ms) {
      const value = Math.max(0, Math.round(ms));
      panel.dataset.bufferMs = String(value);
      setText($("phone-buffer"), `${value} ms`);
    }

    // Browsers give the microphone (and audio worklets) to secure contexts only: https, or
    // http on localhost / 127.0.0.1. Elsewhere `navigator.mediaDevices` is undefined.
    function insecureContextHelp() {
      const port = location.port || (location.protocol === "https:" ? "443" : "80");
      const local = `http://127.0.0.1:${port}${location.pathname}`;
      return `The microphone only works on a secure page, and ${location.origin} is plain http ` +
        `on another machine. Open ${local} on the machine running the service, or tunnel to it ` +
        `(ssh -L ${port}:127.0.0.1:${port} <that machine>, then open ${local} here), ` +
        "or serve the console over https.";
    }

    async function start() {
      if (call && !call.ended) return;
      if (!window.isSecureContext || !navigator.mediaDevices || !window.AudioWorkletNode) {
        panel.dataset.reason = "insecure-context";
        show("unavailable", insecureContextHelp());
        return;
      }
      delete panel.dataset.reason;
      let stream;
      try {
        stream = await navigator.mediaDevices.getUserMedia({
          audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 },
        });
      } catch (err) {
        hooks.toast(`Microphone not available: ${err.message || err.name}`, "bad");
        return;
      }
      const context = new AudioContext({ latencyHint: "interactive" });
      try {
        await context.audioWorklet.addModule(WORKLET);
      } catch (err) {
        stream.getTracks().forEach((track) => track.stop());
        await context.close();
        hooks.toast(`Audio could not start: ${err.message}`, "bad");
        return;
      }
      const capture = new AudioWorkletNode(context, "phone-capture", { numberOfOutputs: 1 });
      const playback = new AudioWorkletNode(context, "phone-playback", {
        numberOfInputs: 0, numberOfOutputs: 1, outputChannelCount: [1],
      });
      const analyser = context.createAnalyser();
      analyser.fftSize = 4096;
      analyser.smoothingTimeConstant = 0.2;
      context.createMediaStreamSource(stream).connect(capture);
      capture.connect(context.destination);  // outputs silence; keeps the node pulled
      playback.connect(analyser);
      analyser.connect(context.destination);

      const url = new URL(SOCKET, document.baseURI);
      url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
      const key = hooks.key();
      if (key) url.searchParams.set("key", key);
      const line = hooks.line ? hooks.line() : "";
      if (line) url.searchParams.set("to", line);  // the agent of that line answers
      const ws = new WebSocket(url);
      ws.binaryType = "arraybuffer";
      call = { ws, context, stream, playback, analyser, id: null, ended: false, stops: 0 };
      const current = call;
      panel.dataset.stops = "0";
      delete panel.dataset.lastStopDroppedMs;
      delete panel.dataset.callId;
      setText($("phone-rate"), "—");
      setText($("phone-rtt"), "—");
      showBuffer(0);
      show("calling", "Placing the call…");

      capture.port.onmessage = (event) => {
        if (ws.readyState === WebSocket.OPEN) ws.send(event.data);
      };
      playback.port.onmessage = (event) => {
        const message = event.data;
        if (message.type === "depth") { if (!current.ended) showBuffer(message.ms); }
        else if (message.type === "stopped") {
          current.stops += 1;
          panel.dataset.stops = String(current.stops);
          panel.dataset.lastStopDroppedMs = String(Math.round(message.droppedMs));
        }
      };
      ws.onopen = () => ws.send(JSON.stringify({ type: "start", sample_rate: context.sampleRate }));
      ws.onmessage = (event) => {
        if (event.data instanceof ArrayBuffer) {
          playback.port.postMessage(event.data, [event.data]);
          return;
        }
        let message;
        try { message = JSON.parse(event.data); } catch (err) { return; }
        handle(current, message);
      };
      ws.onclose = (event) => finish(current, event);
    }

    function handle(current, message) {
      switch (message.type) {
        case "call":
          current.id = String(message.call_connection_id);
          panel.dataset.callId = current.id;
          show("calling", "Answered, waiting for media…");
          hooks.onCall(current.id);
          break;
        case "media":
          if (message.state === "started") {
            setText($("phone-rate"), `${Math.round(message.sample_rate / 100) / 10} kHz`);
            show("connected", "Talk: the call hears your microphone");
          } else {
            show("calling", "Media streaming stopped");
          }
          break;
        case "stop":
          current.playback.port.postMessage({ type: "stop" });
          break;
        case "error":
          console.warn("softphone:", message.message);
          break;
        case "ended":
          current.endReason = String(message.reason || "");
          break;
        default:
          break;  // newer server, older page
      }
    }

    function finish(current, event) {
      if (current.ended) return;
      current.ended = true;
      current.stream.getTracks().forEach((track) => track.stop());
      current.context.close();
      // Nothing plays any more: no buffer to show (a late depth report is ignored above).
      panel.dataset.bufferMs = "0";
      setText($("phone-buffer"), "—");
      const reason = current.endReason || CLOSE_REASONS[event.code] || event.reason || "The call ended.";
      show("ended", reason);
      if (CLOSE_REASONS[event.code]) hooks.toast(event.reason || reason, "bad");
    }

    function hangUp() {
      if (call && !call.ended && call.ws.readyState === WebSocket.OPEN) {
        call.ws.send(JSON.stringify({ type: "hangup" }));
      }
    }

    function press(tone) {
      if (call && !call.ended && call.ws.readyState === WebSocket.OPEN) {
        call.ws.send(JSON.stringify({ type: "dtmf", tones: tone }));
        const typed = $("phone-typed");
        setText(typed, (typed.textContent + tone).slice(-18));
      }
    }

    // The strongest frequency the speaker plays now (Hz), from the playback path's analyser.
    function peakFrequency() {
      if (!call || call.ended) return null;
      const bins = new Float32Array(call.analyser.frequencyBinCount);
      call.analyser.getFloatFrequencyData(bins);
      let best = 0;
      for (let i = 1; i < bins.length; i += 1) if (bins[i] > bins[best]) best = i;
      if (!(bins[best] > -90)) return null;  // silence
      return best * call.context.sampleRate / call.analyser.fftSize;
    }

    function showRoundTrip(id, ms) {
      if (call && call.id === id) setText($("phone-rtt"), `${Math.round(ms)} ms`);
    }

    const keypad = $("phone-keypad");
    keypad.replaceChildren(...TONES.map((tone) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "btn key";
      button.dataset.tone = tone;
      button.textContent = tone;
      button.disabled = true;
      button.addEventListener("click", () => press(tone));
      return button;
    }));
    $("phone-hangup").addEventListener("click", hangUp);
    $("phone-call").addEventListener("click", start);
    $("phone-close").addEventListener("click", () => {
      if (!call || call.ended) panel.hidden = true;
    });

    const phone = { start, hangUp, press, peakFrequency, showRoundTrip, get callId() { return call && call.id; } };
    window.AcsBridgePhone.phone = phone;  // for measuring in the page (the browser tests do)
    return phone;
  }

  window.AcsBridgePhone = { create: createPhone };
})();
