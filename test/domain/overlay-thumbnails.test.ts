/**
 * Overlay thumbnails (lambdas/domain/overlay-thumbnails.ts) from npz files written by numpy itself
 * (compressed and stored, with numpy's zip64 extras), checked with an independent PNG reading
 * (node:zlib inflate + CRC-32 per chunk). The scoring container's own writer is exercised by the
 * browser tests (test/browser/make-overlays.py).
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { crc32, inflateSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { keyFramesOf, OverlayFormatError, overlayThumbnails, parseNpy, readNpz } from "../../lambdas/domain/overlay-thumbnails.js";

const PYTHON = resolve("model-container/.venv/bin/python");

/** 6 frames of 40×50: a bright square on frame 4 (score 0.9), a fainter one on frame 1 (0.5). */
function writeNpz(compressed: boolean): Uint8Array {
  const dir = mkdtempSync(join(tmpdir(), "overlay-"));
  const out = join(dir, "o.npz");
  execFileSync(PYTHON, [
    "-c",
    `
import numpy as np, sys
heat = np.zeros((6, 40, 50), np.uint8); heat[4, 10:20, 10:30] = 255; heat[1, 5:8, 5:8] = 128
js = np.zeros((6, 40, 50), np.uint8); js[4, 9:21, 9:31] = 90; js[2, :, :] = 3
scores = np.array([0.1, 0.5, 0.1, 0.0, 0.9, 0.1], np.float32)
(np.savez_compressed if sys.argv[2] == "1" else np.savez)(sys.argv[1], mean_heatmap=heat, js_divergence=js, frame_scores=scores)
`,
    out,
    compressed ? "1" : "0",
  ]);
  const bytes = new Uint8Array(readFileSync(out));
  rmSync(dir, { recursive: true, force: true });
  return bytes;
}

function readPng(png: Uint8Array): { width: number; height: number; pixel: (x: number, y: number) => number[] } {
  expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  let at = 8;
  let width = 0;
  let height = 0;
  const idat: Uint8Array[] = [];
  while (at < png.length) {
    const length = view.getUint32(at);
    const type = new TextDecoder().decode(png.subarray(at + 4, at + 8));
    expect(view.getUint32(at + 8 + length)).toBe(crc32(png.subarray(at + 4, at + 8 + length)));
    if (type === "IHDR") {
      width = view.getUint32(at + 8);
      height = view.getUint32(at + 12);
      expect([...png.subarray(at + 16, at + 21)]).toEqual([8, 2, 0, 0, 0]);
    }
    if (type === "IDAT") idat.push(png.subarray(at + 8, at + 8 + length));
    at += 12 + length;
  }
  const raw = inflateSync(Buffer.concat(idat));
  expect(raw.length).toBe(height * (1 + width * 3));
  return { width, height, pixel: (x, y) => [...raw.subarray(y * (1 + width * 3) + 1 + x * 3, y * (1 + width * 3) + 4 + x * 3)] };
}

describe("overlay thumbnails", () => {
  for (const compressed of [true, false]) {
    it(`reads numpy's ${compressed ? "compressed" : "stored"} npz and renders key frames as PNGs`, () => {
      const npz = writeNpz(compressed);
      const members = readNpz(npz);
      expect(members.get("mean_heatmap")?.shape).toEqual([6, 40, 50]);
      expect(members.get("frame_scores")?.dtype).toBe("f4");
      const t = overlayThumbnails(npz, { count: 2, maxSize: 25 });
      expect(t).toMatchObject({ frames: 6, height: 40, width: 50, thumbnailWidth: 25, thumbnailHeight: 20 });
      expect(t.keyFrames.map((k) => k.frame)).toEqual([1, 4]); // top-2 scores, in frame order
      expect(t.keyFrames[1]?.frameScore).toBeCloseTo(0.9, 6);
      const heat = readPng(t.keyFrames[1]?.heatmapPng as Uint8Array);
      expect([heat.width, heat.height]).toEqual([25, 20]);
      expect(heat.pixel(0, 0)).toEqual([18, 24, 31]); // background
      expect(heat.pixel(8, 7)).toEqual([255, 236, 170]); // inside the square (2×2 box average of 255)
      const js = readPng(t.keyFrames[1]?.jsDivergencePng as Uint8Array);
      expect(js.pixel(0, 0)).toEqual([18, 24, 31]);
      expect(js.pixel(8, 7)).not.toEqual([18, 24, 31]);
    });
  }

  it("ties on frame score break by summed JS divergence, then by frame index", () => {
    const js = new Uint8Array(4 * 2);
    js[5] = 9; // frame 2
    expect(keyFramesOf([0, 0, 0, 0], js, 2, 2)).toEqual([0, 2]);
  });

  it("refuses what is not the container's overlay with a named error", () => {
    expect(() => overlayThumbnails(new Uint8Array(100))).toThrow(OverlayFormatError);
    expect(() => parseNpy(new TextEncoder().encode("not numpy at all"))).toThrow(/not a .npy array/);
    const npz = writeNpz(true);
    const cut = npz.slice(0, npz.length - 30); // end of central directory gone
    expect(() => readNpz(cut)).toThrow(OverlayFormatError);
  });
});
