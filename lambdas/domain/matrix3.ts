/** 3-vectors and symmetric 3×3 matrices for the labeling-time regression (three coefficients α, β, γ). */

export type Vec3 = readonly [number, number, number];
export type Mat3 = readonly [Vec3, Vec3, Vec3];

export const ZERO3: Mat3 = [
  [0, 0, 0],
  [0, 0, 0],
  [0, 0, 0],
];

export const dot3 = (a: Vec3, b: Vec3): number => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];

export const mulMatVec = (m: Mat3, v: Vec3): Vec3 => [dot3(m[0], v), dot3(m[1], v), dot3(m[2], v)];

/** xᵀ M x. */
export const quadratic = (m: Mat3, x: Vec3): number => dot3(x, mulMatVec(m, x));

export const addMat = (a: Mat3, b: Mat3, scaleB = 1): Mat3 =>
  a.map((row, i) => row.map((v, j) => v + scaleB * (b[i] as Vec3)[j as 0])) as unknown as Mat3;

export const scaleMat = (m: Mat3, s: number): Mat3 => addMat(ZERO3, m, s);

export const addVec = (a: Vec3, b: Vec3, scaleB = 1): Vec3 => [a[0] + scaleB * b[0], a[1] + scaleB * b[1], a[2] + scaleB * b[2]];

/** x xᵀ. */
export const outer = (x: Vec3): Mat3 => [
  [x[0] * x[0], x[0] * x[1], x[0] * x[2]],
  [x[1] * x[0], x[1] * x[1], x[1] * x[2]],
  [x[2] * x[0], x[2] * x[1], x[2] * x[2]],
];

/** Inverse by cofactors; undefined when the matrix is singular to working precision. */
export function invert3(m: Mat3): Mat3 | undefined {
  const [[a, b, c], [d, e, f], [g, h, i]] = m;
  const A = e * i - f * h;
  const B = -(d * i - f * g);
  const C = d * h - e * g;
  const det = a * A + b * B + c * C;
  const scale = Math.max(...m.flat().map(Math.abs));
  if (!Number.isFinite(det) || Math.abs(det) <= 1e-14 * scale ** 3) return undefined;
  return [
    [A / det, -(b * i - c * h) / det, (b * f - c * e) / det],
    [B / det, (a * i - c * g) / det, -(a * f - c * d) / det],
    [C / det, -(a * h - b * g) / det, (a * e - b * d) / det],
  ];
}

/** Lower Cholesky factor L (M = L Lᵀ) of a symmetric positive-definite matrix. */
export function cholesky3(m: Mat3): Mat3 {
  const l = [
    [0, 0, 0],
    [0, 0, 0],
    [0, 0, 0],
  ];
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j <= i; j++) {
      let s = (m[i] as Vec3)[j as 0];
      for (let k = 0; k < j; k++) s -= ((l[i] as number[])[k] as number) * ((l[j] as number[])[k] as number);
      (l[i] as number[])[j] = i === j ? Math.sqrt(Math.max(s, 0)) : s / (((l[j] as number[])[j] as number) || 1);
    }
  }
  return l as unknown as Mat3;
}
