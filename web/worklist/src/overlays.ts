/** Each stack card's key-frame thumbnails (heatmap and JS divergence), loaded three stacks at a time. */
import type { OverlayResponse } from "./api.js";
import { h } from "./dom.js";
import { page } from "./page-state.js";

export async function loadOverlays(stackIds: string[]): Promise<void> {
  const queue = [...stackIds];
  const worker = async () => {
    for (let id = queue.shift(); id !== undefined; id = queue.shift()) await loadOverlay(id);
  };
  await Promise.all([worker(), worker(), worker()]);
}

async function loadOverlay(stackId: string): Promise<void> {
  const card = page.cards.get(stackId);
  if (!page.api || !card) return;
  const answer = await page.api.overlays(stackId);
  if (answer.status !== 200 || !answer.body || !("keyFrames" in answer.body)) {
    const text =
      answer.status === 404
        ? "No overlays stored for this stack."
        : answer.status === undefined
          ? "Overlays could not be loaded (no answer from the server)."
          : `Overlays could not be loaded (HTTP ${answer.status}).`;
    card.thumbs.replaceChildren(h("p", { class: "muted" }, text));
    return;
  }
  const overlay: OverlayResponse = answer.body;
  const size = { width: String(overlay.thumbnailWidth), height: String(overlay.thumbnailHeight) };
  const figures = overlay.keyFrames.map((k) => {
    const frame = `frame ${k.frame + 1} of ${overlay.frames}`;
    return h(
      "figure",
      { class: "key-frame" },
      h("img", { src: k.heatmapPng, alt: `Mean heatmap, ${frame} (frame score ${k.frameScore.toFixed(2)})`, class: "heatmap", ...size }),
      h("img", { src: k.jsDivergencePng, alt: `JS divergence, ${frame}`, class: "js", ...size }),
      h("figcaption", {}, `Frame ${k.frame + 1}`, h("span", { class: "detail" }, ` · ${k.frameScore.toFixed(2)}`)),
    );
  });
  card.thumbs.replaceChildren(
    h(
      "div",
      { class: "legend", "aria-hidden": "true" },
      h("span", { class: "swatch heat" }),
      "heatmap",
      h("span", { class: "swatch js" }),
      "JS divergence",
    ),
    h("div", { class: "frames" }, ...figures),
  );
}
