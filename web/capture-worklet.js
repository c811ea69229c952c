// The booth microphone's audio worklet: hands the captured samples to the page in 10 ms
// blocks (480 samples at 48 kHz), moved (not copied) to the main thread, where the
// WebCodecs AudioEncoder turns them into Opus packets.

/** Samples per block handed to the page. */
const BLOCK = 480;

class Capture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.buf = new Float32Array(BLOCK);
    this.n = 0;
  }

  process(inputs) {
    const ch = inputs[0] && inputs[0][0];
    if (ch) {
      for (let i = 0; i < ch.length; i++) {
        this.buf[this.n++] = ch[i];
        if (this.n === BLOCK) {
          this.port.postMessage(this.buf, [this.buf.buffer]);
          this.buf = new Float32Array(BLOCK);
          this.n = 0;
        }
      }
    }
    return true;
  }
}

registerProcessor("babelcast-capture", Capture);
