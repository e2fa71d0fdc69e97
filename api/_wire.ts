/**
 * Frames between the service and its worker processes, over a pipe: a message is JSON with its
 * byte arrays (images, memory) moved out of the text into a binary tail, so they cross the pipe as
 * they are. A frame is [u32 frame length][u32 JSON length][u32 blob count][JSON][blobs…], lengths
 * little-endian; each Uint8Array in the message is `{"$b":[offset,length]}` in the JSON.
 */
import { Buffer } from "node:buffer";

const HEAD = 12;
/** The largest frame either side accepts (a request's image or memory is capped far below this). */
export const MAX_FRAME = 1 << 30;

/** A message as one frame. */
export function encodeFrame(msg: unknown): Buffer {
  const blobs: Uint8Array[] = [];
  let offset = 0;
  const json = JSON.stringify(msg, (_k, v) => {
    if (v instanceof Uint8Array) {
      blobs.push(v);
      const at = offset;
      offset += v.byteLength;
      return { $b: [at, v.byteLength] };
    }
    return v;
  });
  const text = Buffer.from(json, "utf8");
  const frame = Buffer.allocUnsafe(HEAD + text.length + offset);
  frame.writeUInt32LE(frame.length, 0);
  frame.writeUInt32LE(text.length, 4);
  frame.writeUInt32LE(blobs.length, 8);
  text.copy(frame, HEAD);
  let at = HEAD + text.length;
  for (const b of blobs) {
    frame.set(b, at);
    at += b.byteLength;
  }
  return frame;
}

/**
 * Reassembles frames from the chunks a pipe delivers and hands each decoded message on.
 * @throws RangeError on a frame over MAX_FRAME (the peer is broken; the caller drops it)
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(private readonly onMessage: (m: unknown) => void) {}

  push(chunk: Uint8Array): void {
    this.chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.buffered += chunk.byteLength;
    while (this.buffered >= 4) {
      if (this.chunks[0].length < 4) this.chunks = [Buffer.concat(this.chunks)];
      const len = this.chunks[0].readUInt32LE(0);
      if (len < HEAD || len > MAX_FRAME) throw new RangeError(`Bad frame length ${len}`);
      if (this.buffered < len) return;
      // Joined only once the whole frame is here.
      if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)];
      const buf = this.chunks[0];
      const frame = buf.subarray(0, len);
      const rest = buf.subarray(len);
      this.chunks = rest.length ? [Buffer.from(rest)] : [];
      this.buffered = rest.length;
      this.onMessage(decodeFrame(frame));
    }
  }
}

function decodeFrame(frame: Buffer): unknown {
  const textLen = frame.readUInt32LE(4);
  const count = frame.readUInt32LE(8);
  const text = frame.toString("utf8", HEAD, HEAD + textLen);
  if (count === 0) return JSON.parse(text);
  const base = HEAD + textLen;
  return JSON.parse(text, (_k, v) => {
    if (v !== null && typeof v === "object" && Array.isArray(v.$b)) {
      // A copy: the frame's buffer is reused by the reader.
      return new Uint8Array(frame.subarray(base + v.$b[0], base + v.$b[0] + v.$b[1]));
    }
    return v;
  });
}
