/**
 * The protobuf wire format, as much of it as OTLP spans need: a growable writer and a reader.
 * Written for the span pipeline's hot path (telemetry/otlp-spans.ts): no object per field, short ASCII
 * strings copied by a loop instead of a native call, nested messages sized after the fact.
 */

export const TWO_32 = 4294967296;

export const WireType = { VARINT: 0, FIXED64: 1, LENGTH: 2, FIXED32: 5 } as const;
export type WireType = (typeof WireType)[keyof typeof WireType];

/** Hex digit -> value (255 for a character that is not one). */
const HEX_VALUE = new Uint8Array(128).fill(255);
for (let i = 0; i < 16; i++) {
  HEX_VALUE['0123456789abcdef'.charCodeAt(i)] = i;
  HEX_VALUE['0123456789ABCDEF'.charCodeAt(i)] = i;
}

export class ProtobufWriter {
  buf: Buffer;
  pos = 0;

  constructor(initialSize = 64 * 1024) {
    // Never from the shared pool: a posted view copies its whole ArrayBuffer.
    this.buf = Buffer.allocUnsafeSlow(initialSize);
  }

  /** The bytes written so far (a view; copy it before writing on). */
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }

  reset(): void {
    this.pos = 0;
  }

  ensure(extra: number): void {
    if (this.pos + extra <= this.buf.length) return;
    const grown = Buffer.allocUnsafeSlow(Math.max(this.buf.length * 2, this.pos + extra));
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }

  tag(field: number, wireType: WireType): void {
    this.varint((field << 3) | wireType);
  }

  /** A non-negative integer up to 2^53. */
  varint(value: number): void {
    this.ensure(10);
    const buf = this.buf;
    if (value < 0x80000000) {
      while (value >= 0x80) {
        buf[this.pos++] = (value & 0x7f) | 0x80;
        value >>>= 7;
      }
      buf[this.pos++] = value;
      return;
    }
    while (value >= 0x80) {
      buf[this.pos++] = (value % 0x80) | 0x80;
      value = Math.floor(value / 0x80);
    }
    buf[this.pos++] = value;
  }

  /** An int64 (two's complement: a negative value takes ten bytes). */
  int64(value: number): void {
    if (value >= 0 && value <= Number.MAX_SAFE_INTEGER) return this.varint(value);
    let big = BigInt.asUintN(64, BigInt(value));
    this.ensure(10);
    while (big >= 0x80n) {
      this.buf[this.pos++] = Number(big & 0x7fn) | 0x80;
      big >>= 7n;
    }
    this.buf[this.pos++] = Number(big);
  }

  fixed32(value: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(value >>> 0, this.pos);
    this.pos += 4;
  }

  /** A fixed64 from its two 32-bit halves. */
  fixed64(low: number, high: number): void {
    this.ensure(8);
    this.buf.writeUInt32LE(low >>> 0, this.pos);
    this.buf.writeUInt32LE(high >>> 0, this.pos + 4);
    this.pos += 8;
  }

  double(value: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(value, this.pos);
    this.pos += 8;
  }

  /** A length-delimited UTF-8 string. */
  string(value: string): void {
    const length = value.length;
    if (length < 128) {
      // Most strings here are short ASCII: copy them in a loop, falling back at the first other character.
      this.ensure(length + 1);
      const buf = this.buf;
      const start = this.pos;
      buf[start] = length;
      let i = 0;
      for (; i < length; i++) {
        const code = value.charCodeAt(i);
        if (code >= 0x80) break;
        buf[start + 1 + i] = code;
      }
      if (i === length) {
        this.pos = start + 1 + length;
        return;
      }
    }
    const byteLength = Buffer.byteLength(value, 'utf8');
    this.varint(byteLength);
    this.ensure(byteLength);
    this.pos += this.buf.write(value, this.pos, byteLength, 'utf8');
  }

  /** Bytes as they are (no length prefix). */
  raw(bytes: Uint8Array): void {
    const length = bytes.length;
    this.ensure(length);
    if (length > 32) this.buf.set(bytes, this.pos);
    else for (let i = 0; i < length; i++) this.buf[this.pos + i] = bytes[i]!;
    this.pos += length;
  }

  /** A length-delimited id given as 32-bit words, most significant first (4 for a trace id, 2 for a span id). */
  idWords(words: readonly number[]): void {
    const count = words.length;
    this.ensure(count * 4 + 1);
    const buf = this.buf;
    let at = this.pos;
    buf[at++] = count * 4;
    for (let i = 0; i < count; i++) {
      const word = words[i]!;
      buf[at++] = word >>> 24;
      buf[at++] = (word >>> 16) & 0xff;
      buf[at++] = (word >>> 8) & 0xff;
      buf[at++] = word & 0xff;
    }
    this.pos = at;
  }

  /** A length-delimited byte string given in hex (trace and span ids). */
  hexBytes(hex: string): void {
    const length = hex.length >> 1;
    this.ensure(length + 1);
    const buf = this.buf;
    buf[this.pos++] = length;
    for (let i = 0; i < length; i++) {
      buf[this.pos++] = (HEX_VALUE[hex.charCodeAt(2 * i)]! << 4) | HEX_VALUE[hex.charCodeAt(2 * i + 1)]!;
    }
  }

  /**
   * Starts a nested message: one byte is kept for its length, which most of them fit in; `finish` moves
   * the content along when the length needs more.
   */
  begin(): number {
    this.ensure(1);
    return this.pos++;
  }

  finish(start: number): void {
    const length = this.pos - start - 1;
    if (length < 0x80) {
      this.buf[start] = length;
      return;
    }
    const extra = varintSize(length) - 1;
    this.ensure(extra);
    this.buf.copy(this.buf, start + 1 + extra, start + 1, this.pos);
    this.pos += extra;
    let value = length;
    let at = start;
    while (value >= 0x80) {
      this.buf[at++] = (value % 0x80) | 0x80;
      value = Math.floor(value / 0x80);
    }
    this.buf[at] = value;
  }
}

function varintSize(value: number): number {
  let size = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 0x80);
    size++;
  }
  return size;
}

/** Reads what ProtobufWriter writes (and any valid protobuf of the same fields). */
export class ProtobufReader {
  readonly #buf: Buffer;
  pos: number;
  readonly end: number;

  constructor(bytes: Uint8Array, start = 0, end = bytes.length) {
    this.#buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = start;
    this.end = end;
  }

  done(): boolean {
    return this.pos >= this.end;
  }

  /** The next field's number and wire type. */
  tag(): { field: number; wireType: number } {
    const value = this.varint();
    return { field: Math.floor(value / 8), wireType: value & 7 };
  }

  varint(): number {
    let result = 0;
    let scale = 1;
    for (let shift = 0; shift < 70; shift += 7) {
      if (this.pos >= this.end) throw new Error('protobuf: truncated varint');
      const byte = this.#buf[this.pos++]!;
      result += (byte & 0x7f) * scale;
      if (byte < 0x80) return result;
      scale *= 0x80;
    }
    throw new Error('protobuf: varint too long');
  }

  /** An int64 varint as a number (negative values come back negative). */
  int64(): number {
    const start = this.pos;
    const unsigned = this.varint();
    if (unsigned <= Number.MAX_SAFE_INTEGER) return unsigned;
    // Beyond 2^53 (a negative int64, or a huge one): read it again exactly.
    let big = 0n;
    let shift = 0n;
    for (let at = start; at < this.pos; at++, shift += 7n) big |= BigInt(this.#buf[at]! & 0x7f) << shift;
    return Number(BigInt.asIntN(64, big));
  }

  fixed32(): number {
    const value = this.#buf.readUInt32LE(this.pos);
    this.pos += 4;
    return value;
  }

  /** A fixed64 as its two halves. */
  fixed64(): { low: number; high: number } {
    const low = this.#buf.readUInt32LE(this.pos);
    const high = this.#buf.readUInt32LE(this.pos + 4);
    this.pos += 8;
    return { low, high };
  }

  double(): number {
    const value = this.#buf.readDoubleLE(this.pos);
    this.pos += 8;
    return value;
  }

  /** A length-delimited field: a reader over its bytes (the parent moves past them). */
  nested(): ProtobufReader {
    const length = this.varint();
    const start = this.pos;
    if (start + length > this.end) throw new Error('protobuf: truncated field');
    this.pos += length;
    return new ProtobufReader(this.#buf, start, start + length);
  }

  string(): string {
    const length = this.varint();
    if (this.pos + length > this.end) throw new Error('protobuf: truncated string');
    const value = this.#buf.toString('utf8', this.pos, this.pos + length);
    this.pos += length;
    return value;
  }

  hex(): string {
    const length = this.varint();
    const value = this.#buf.toString('hex', this.pos, this.pos + length);
    this.pos += length;
    return value;
  }

  skip(wireType: number): void {
    if (wireType === WireType.VARINT) this.varint();
    else if (wireType === WireType.FIXED64) this.pos += 8;
    else if (wireType === WireType.LENGTH) this.pos += this.varint();
    else if (wireType === WireType.FIXED32) this.pos += 4;
    else throw new Error(`protobuf: unsupported wire type ${wireType}`);
  }
}
