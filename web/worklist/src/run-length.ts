/**
 * Run-length encoding of a label map as base64 ([value, run] pairs as uint32, little-endian as the
 * browser stores them): what mask-drafts.ts keeps in localStorage. Pure (no DOM).
 */
export function encodeRuns(labels: Uint8Array): string {
  const runs: number[] = [];
  let i = 0;
  while (i < labels.length) {
    const value = labels[i] as number;
    let j = i + 1;
    while (j < labels.length && labels[j] === value) j++;
    runs.push(value, j - i);
    i = j;
  }
  const bytes = new Uint8Array(new Uint32Array(runs).buffer);
  let text = "";
  for (let k = 0; k < bytes.length; k += 0x8000) text += String.fromCharCode(...bytes.subarray(k, k + 0x8000));
  return btoa(text);
}

export function decodeRuns(text: string, length: number): Uint8Array | undefined {
  const raw = atob(text);
  if (raw.length % 8 !== 0) return undefined;
  const bytes = Uint8Array.from(raw, (c) => c.charCodeAt(0));
  const runs = new Uint32Array(bytes.buffer);
  const labels = new Uint8Array(length);
  let at = 0;
  for (let k = 0; k < runs.length; k += 2) {
    const value = runs[k] as number;
    const run = runs[k + 1] as number;
    if (at + run > length || value > 255) return undefined;
    labels.fill(value, at, at + run);
    at += run;
  }
  return at === length ? labels : undefined;
}
