/**
 * Key-frame thumbnails for the annotators' worklist page, from the overlays the scoring
 * container writes per stack (model-container/ichal/scoring.py `overlay_npz`): a compressed npz with
 *
 *   mean_heatmap   uint8 [F, H, W]   mean ensemble hemorrhage probability × 255
 *   js_divergence  uint8 [F, H, W]   pixelwise JS divergence × 255 / ln 2 (paper §3.1, eq. 1)
 *   frame_scores   float32 [F]       per-frame hemorrhage score
 *
 * The container writes no images, so this module renders them: key frames are the `count` frames with
 * the highest frame score (ties: larger summed JS divergence, then lower frame index), shown in frame
 * order; each frame is box-averaged down to at most `maxSize` pixels a side and colour-mapped onto a
 * dark background (heatmap: dark → red → amber → pale yellow; JS divergence: dark → indigo → teal →
 * pale cyan), then encoded as an 8-bit RGB PNG. Pure computation: bytes in, bytes out (node:zlib
 * for DEFLATE only). A malformed overlay throws OverlayFormatError naming what is wrong.
 */
import { deflateSync, inflateRawSync } from "node:zlib";

/** The overlay object is not the npz the scoring container writes. */
export class OverlayFormatError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(`overlay: ${message}`, options);
    this.name = "OverlayFormatError";
  }
}

/** Largest uncompressed member accepted (a 64-frame 512² uint8 map is 16 MiB). */
export const MAX_MEMBER_BYTES = 128 * 1024 * 1024;

export interface NpyArray {
  readonly dtype: "u1" | "f4" | "f8";
  readonly shape: readonly number[];
  /** Values in C order. */
  readonly data: Uint8Array | Float32Array | Float64Array;
}

export interface KeyFrameThumbnail {
  readonly frame: number;
  readonly frameScore: number;
  readonly heatmapPng: Uint8Array;
  readonly jsDivergencePng: Uint8Array;
}

export interface OverlayThumbnails {
  readonly frames: number;
  /** Model-grid size of the stored maps. */
  readonly height: number;
  readonly width: number;
  /** Thumbnail size. */
  readonly thumbnailHeight: number;
  readonly thumbnailWidth: number;
  readonly keyFrames: readonly KeyFrameThumbnail[];
}

export interface ThumbnailOptions {
  /** Key frames to render (default 3). */
  readonly count?: number;
  /** Longest thumbnail side in pixels (default 160). */
  readonly maxSize?: number;
}

/** Renders the key-frame thumbnails of one stack's overlay npz; see the module comment. */
export function overlayThumbnails(npz: Uint8Array, options: ThumbnailOptions = {}): OverlayThumbnails {
  const members = readNpz(npz);
  const heat = member(members, "mean_heatmap");
  const js = member(members, "js_divergence");
  const scores = member(members, "frame_scores");
  if (heat.dtype !== "u1" || js.dtype !== "u1") throw new OverlayFormatError("mean_heatmap and js_divergence must be uint8");
  if (heat.shape.length !== 3 || heat.shape.join() !== js.shape.join()) {
    throw new OverlayFormatError(`maps must share one [F, H, W] shape (got ${heat.shape.join("×")} and ${js.shape.join("×")})`);
  }
  const [frames = 0, height = 0, width = 0] = heat.shape;
  if (frames < 1 || height < 1 || width < 1) throw new OverlayFormatError("maps are empty");
  if (scores.data.length !== frames) throw new OverlayFormatError(`frame_scores has ${scores.data.length} entries for ${frames} frames`);
  const keyFrames = keyFramesOf(scores.data, js.data as Uint8Array, height * width, options.count ?? 3);
  const factor = Math.max(1, Math.ceil(Math.max(height, width) / (options.maxSize ?? 160)));
  const th = Math.ceil(height / factor);
  const tw = Math.ceil(width / factor);
  return {
    frames,
    height,
    width,
    thumbnailHeight: th,
    thumbnailWidth: tw,
    keyFrames: keyFrames.map((frame) => ({
      frame,
      frameScore: Number(scores.data[frame]),
      heatmapPng: encodeRgbPng(tw, th, colourise(downsample(heat.data as Uint8Array, frame, height, width, factor), HEATMAP_STOPS)),
      jsDivergencePng: encodeRgbPng(tw, th, colourise(downsample(js.data as Uint8Array, frame, height, width, factor), JS_STOPS)),
    })),
  };
}

/** The `count` key frames (frame order): highest score, then larger summed JS, then lower index. */
export function keyFramesOf(scores: ArrayLike<number>, js: Uint8Array, frameSize: number, count: number): number[] {
  const ranked = Array.from({ length: scores.length }, (_, frame) => {
    let sum = 0;
    for (let i = frame * frameSize; i < (frame + 1) * frameSize; i++) sum += js[i] ?? 0;
    return { frame, score: Number(scores[frame]), js: sum };
  });
  ranked.sort((a, b) => b.score - a.score || b.js - a.js || a.frame - b.frame);
  return ranked
    .slice(0, Math.max(0, count))
    .map((r) => r.frame)
    .sort((a, b) => a - b);
}

function member(members: Map<string, NpyArray>, name: string): NpyArray {
  const array = members.get(name);
  if (!array) throw new OverlayFormatError(`no ${name} in the npz (members: ${[...members.keys()].join(", ") || "none"})`);
  return array;
}

function downsample(data: Uint8Array, frame: number, height: number, width: number, factor: number): Uint8Array {
  const th = Math.ceil(height / factor);
  const tw = Math.ceil(width / factor);
  const out = new Uint8Array(th * tw);
  const base = frame * height * width;
  for (let y = 0; y < th; y++) {
    for (let x = 0; x < tw; x++) {
      let sum = 0;
      let n = 0;
      for (let dy = 0; dy < factor && y * factor + dy < height; dy++) {
        const row = base + (y * factor + dy) * width;
        for (let dx = 0; dx < factor && x * factor + dx < width; dx++) {
          sum += data[row + x * factor + dx] ?? 0;
          n++;
        }
      }
      out[y * tw + x] = Math.round(sum / n);
    }
  }
  return out;
}

type Stop = readonly [at: number, r: number, g: number, b: number];
/** Background #12181f; low values stay close to it so empty tissue reads as calm. */
const HEATMAP_STOPS: readonly Stop[] = [
  [0, 18, 24, 31],
  [0.25, 110, 28, 36],
  [0.55, 204, 72, 44],
  [0.8, 240, 160, 60],
  [1, 255, 236, 170],
];
const JS_STOPS: readonly Stop[] = [
  [0, 18, 24, 31],
  [0.25, 52, 40, 120],
  [0.55, 40, 110, 160],
  [0.8, 60, 190, 180],
  [1, 200, 250, 240],
];

function colourise(values: Uint8Array, stops: readonly Stop[]): Uint8Array {
  const lut = new Uint8Array(256 * 3);
  for (let v = 0; v < 256; v++) {
    const t = v / 255;
    let i = 1;
    while (i < stops.length - 1 && (stops[i] as Stop)[0] < t) i++;
    const [a0, ar, ag, ab] = stops[i - 1] as Stop;
    const [b0, br, bg, bb] = stops[i] as Stop;
    const f = b0 === a0 ? 0 : Math.min(1, Math.max(0, (t - a0) / (b0 - a0)));
    lut[v * 3] = Math.round(ar + (br - ar) * f);
    lut[v * 3 + 1] = Math.round(ag + (bg - ag) * f);
    lut[v * 3 + 2] = Math.round(ab + (bb - ab) * f);
  }
  const rgb = new Uint8Array(values.length * 3);
  for (let i = 0; i < values.length; i++) {
    const v = values[i] ?? 0;
    rgb[i * 3] = lut[v * 3] ?? 0;
    rgb[i * 3 + 1] = lut[v * 3 + 1] ?? 0;
    rgb[i * 3 + 2] = lut[v * 3 + 2] ?? 0;
  }
  return rgb;
}

// --- PNG (RFC 2083): signature, IHDR, one IDAT (filter 0 per row, zlib), IEND ---------------------

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of bytes) c = (CRC_TABLE[(c ^ byte) & 0xff] as number) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/** An 8-bit RGB PNG of `rgb` (row-major, 3 bytes a pixel). */
export function encodeRgbPng(width: number, height: number, rgb: Uint8Array): Uint8Array {
  if (rgb.length !== width * height * 3) throw new RangeError(`rgb has ${rgb.length} bytes for ${width}×${height}`);
  const header = new Uint8Array(13);
  const hv = new DataView(header.buffer);
  hv.setUint32(0, width);
  hv.setUint32(4, height);
  header.set([8, 2, 0, 0, 0], 8); // bit depth 8, colour type 2 (RGB), deflate, filter 0, no interlace
  const raw = new Uint8Array(height * (1 + width * 3));
  for (let y = 0; y < height; y++) raw.set(rgb.subarray(y * width * 3, (y + 1) * width * 3), y * (1 + width * 3) + 1);
  const parts = [
    Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", header),
    chunk("IDAT", new Uint8Array(deflateSync(raw))),
    chunk("IEND", new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// --- npz: a zip (numpy writes zip64 extras) of .npy members -----------------------------------------

/** The arrays of an npz, by member name without `.npy`. */
export function readNpz(bytes: Uint8Array): Map<string, NpyArray> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let eocd = -1;
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 65_557); i--) {
    if (view.getUint32(i, true) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new OverlayFormatError("not a zip archive (no end-of-central-directory record)");
  let entries = view.getUint16(eocd + 10, true);
  let offset = view.getUint32(eocd + 16, true);
  if ((offset === 0xffffffff || entries === 0xffff) && eocd >= 20 && view.getUint32(eocd - 20, true) === 0x07064b50) {
    const record = Number(view.getBigUint64(eocd - 20 + 8, true));
    if (record + 56 > bytes.length || view.getUint32(record, true) !== 0x06064b50) throw new OverlayFormatError("bad zip64 directory");
    entries = Number(view.getBigUint64(record + 32, true));
    offset = Number(view.getBigUint64(record + 48, true));
  }
  const members = new Map<string, NpyArray>();
  for (let e = 0; e < entries; e++) {
    if (offset + 46 > bytes.length || view.getUint32(offset, true) !== 0x02014b50) throw new OverlayFormatError("bad central directory");
    const method = view.getUint16(offset + 10, true);
    let compressed = view.getUint32(offset + 20, true);
    let size = view.getUint32(offset + 24, true);
    const nameLength = view.getUint16(offset + 28, true);
    const extraLength = view.getUint16(offset + 30, true);
    const commentLength = view.getUint16(offset + 32, true);
    let local = view.getUint32(offset + 42, true);
    const name = new TextDecoder().decode(bytes.subarray(offset + 46, offset + 46 + nameLength));
    // zip64 extended information (0x0001): only the fields whose 32-bit slot is 0xFFFFFFFF, in this order.
    for (let x = offset + 46 + nameLength; x + 4 <= offset + 46 + nameLength + extraLength; ) {
      const id = view.getUint16(x, true);
      const length = view.getUint16(x + 2, true);
      if (id === 0x0001) {
        let at = x + 4;
        const next = () => {
          const value = Number(view.getBigUint64(at, true));
          at += 8;
          return value;
        };
        if (size === 0xffffffff) size = next();
        if (compressed === 0xffffffff) compressed = next();
        if (local === 0xffffffff) local = next();
      }
      x += 4 + length;
    }
    offset += 46 + nameLength + extraLength + commentLength;
    if (!name.endsWith(".npy")) continue;
    if (size > MAX_MEMBER_BYTES) throw new OverlayFormatError(`${name} is ${size} bytes uncompressed (limit ${MAX_MEMBER_BYTES})`);
    if (local + 30 > bytes.length || view.getUint32(local, true) !== 0x04034b50)
      throw new OverlayFormatError(`bad local header for ${name}`);
    const start = local + 30 + view.getUint16(local + 26, true) + view.getUint16(local + 28, true);
    const data = bytes.subarray(start, start + compressed);
    if (data.length !== compressed) throw new OverlayFormatError(`${name} is truncated`);
    let raw: Uint8Array;
    if (method === 0) raw = data;
    else if (method === 8) {
      try {
        raw = new Uint8Array(inflateRawSync(data, { maxOutputLength: MAX_MEMBER_BYTES }));
      } catch (error) {
        throw new OverlayFormatError(`${name} does not inflate`, { cause: error });
      }
    } else throw new OverlayFormatError(`${name} uses zip method ${method} (stored or deflate expected)`);
    if (raw.length !== size) throw new OverlayFormatError(`${name} inflated to ${raw.length} bytes, directory says ${size}`);
    members.set(name.slice(0, -4), parseNpy(raw, name));
  }
  return members;
}

/** One .npy (format 1.0–3.0), C order, dtype uint8 / little-endian float32 / float64. */
export function parseNpy(raw: Uint8Array, name = "array"): NpyArray {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (raw.length < 10 || magic.some((b, i) => raw[i] !== b)) throw new OverlayFormatError(`${name} is not a .npy array`);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const major = raw[6] ?? 0;
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const headerStart = major === 1 ? 10 : 12;
  const header = new TextDecoder().decode(raw.subarray(headerStart, headerStart + headerLength));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) throw new OverlayFormatError(`${name} has an unreadable header`);
  if (fortran === "True") throw new OverlayFormatError(`${name} is in Fortran order`);
  const shape = shapeText
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(Number);
  const count = shape.reduce((n, d) => n * d, 1);
  const body = raw.subarray(headerStart + headerLength);
  const copy = (bytesPer: number) => {
    if (body.length < count * bytesPer) throw new OverlayFormatError(`${name} holds ${body.length} bytes for ${count} values`);
    return body.slice(0, count * bytesPer).buffer;
  };
  if (descr === "|u1" || descr === "<u1") return { dtype: "u1", shape, data: new Uint8Array(copy(1)) };
  if (descr === "<f4") return { dtype: "f4", shape, data: new Float32Array(copy(4)) };
  if (descr === "<f8") return { dtype: "f8", shape, data: new Float64Array(copy(8)) };
  throw new OverlayFormatError(`${name} has dtype ${descr} (uint8, <f4 or <f8 expected)`);
}
