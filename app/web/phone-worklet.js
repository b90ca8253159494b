// The softphone's audio thread: microphone capture in 20 ms PCM16 chunks, and playback of the
// call's audio through a small jitter buffer that a StopAudio empties at once.
"use strict";

const CHUNK_MS = 20;
const START_MS = 60;       // buffered before playback starts (and again after an underrun)
const MAX_MS = 1000;       // more than this queued: the oldest goes (latency beats completeness)
const REPORT_MS = 100;     // how often the buffer depth goes to the page

// Microphone: Float32 quanta of 128 samples in, 20 ms Int16 chunks out to the page.
class PhoneCapture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.size = Math.round(sampleRate * CHUNK_MS / 1000);
    this.chunk = new Int16Array(this.size);
    this.filled = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    for (let i = 0; i < channel.length; i += 1) {
      const sample = Math.max(-1, Math.min(1, channel[i]));
      this.chunk[this.filled] = sample < 0 ? sample * 0x8000 : sample * 0x7fff;
      this.filled += 1;
      if (this.filled === this.size) {
        this.port.postMessage(this.chunk.buffer, [this.chunk.buffer]);
        this.chunk = new Int16Array(this.size);
        this.filled = 0;
      }
    }
    return true;
  }
}

// Speaker: Int16 chunks from the page in, a continuous Float32 stream out.
class PhonePlayback extends AudioWorkletProcessor {
  constructor() {
    super();
    this.chunks = [];        // Float32Array, oldest first
    this.offset = 0;         // read position in chunks[0]
    this.depth = 0;          // samples queued
    this.playing = false;
    this.startDepth = Math.round(sampleRate * START_MS / 1000);
    this.maxDepth = Math.round(sampleRate * MAX_MS / 1000);
    this.reportEvery = Math.round(sampleRate * REPORT_MS / 1000);
    this.sinceReport = 0;
    this.underruns = 0;
    this.port.onmessage = (event) => this.receive(event.data);
  }

  receive(data) {
    if (data instanceof ArrayBuffer) {
      const pcm = new Int16Array(data);
      const samples = new Float32Array(pcm.length);
      for (let i = 0; i < pcm.length; i += 1) samples[i] = pcm[i] / 0x8000;
      this.chunks.push(samples);
      this.depth += samples.length;
      while (this.depth - this.offset > this.maxDepth && this.chunks.length > 1) {
        this.depth -= this.chunks.shift().length;
        this.offset = 0;
      }
    } else if (data && data.type === "stop") {
      // A barge-in: what is still queued must never play.
      const dropped = this.depth - this.offset;
      this.chunks = [];
      this.offset = 0;
      this.depth = 0;
      this.playing = false;
      this.port.postMessage({ type: "stopped", droppedMs: dropped * 1000 / sampleRate });
      this.report();
    }
  }

  process(inputs, outputs) {
    const out = outputs[0][0];
    if (!this.playing && this.depth - this.offset >= this.startDepth) this.playing = true;
    let written = 0;
    while (this.playing && written < out.length && this.chunks.length) {
      const chunk = this.chunks[0];
      const take = Math.min(out.length - written, chunk.length - this.offset);
      out.set(chunk.subarray(this.offset, this.offset + take), written);
      written += take;
      this.offset += take;
      if (this.offset === chunk.length) {
        this.chunks.shift();
        this.depth -= chunk.length;
        this.offset = 0;
      }
    }
    if (this.playing && written < out.length) {
      this.playing = false;  // ran dry: wait for a little audio again rather than crackle
      this.underruns += 1;
    }
    out.fill(0, written);
    for (let c = 1; c < outputs[0].length; c += 1) outputs[0][c].set(out);
    this.sinceReport += out.length;
    if (this.sinceReport >= this.reportEvery) this.report();
    return true;
  }

  report() {
    this.sinceReport = 0;
    const queued = this.depth - this.offset;
    this.port.postMessage({ type: "depth", ms: queued * 1000 / sampleRate, underruns: this.underruns });
  }
}

registerProcessor("phone-capture", PhoneCapture);
registerProcessor("phone-playback", PhonePlayback);
