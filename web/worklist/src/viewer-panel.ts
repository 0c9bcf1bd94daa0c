/**
 * The viewer panel of one stack card: "Open viewer" → GET /stacks/{id}/viewer → StackViewer (viewer.ts)
 * with its toolbar (window presets, overlays and opacity, brush / eraser / HU-limited brush and size,
 * undo / redo, fill holes on the frame, clear frame / stack, start from the model's suggestion). Every
 * edit is kept in this browser (mask-drafts.ts) until the completion is recorded; `maskFile()` gives
 * the drawn mask as the gzip'd NIfTI file the API checks (domain/mask-nifti-bytes.ts).
 */
import { HEMORRHAGE_TYPES } from "../../../lambdas/contracts/masks.js";
import { maskNiftiBytes } from "../../../lambdas/domain/mask-nifti-bytes.js";
import type { ViewerResponse, WorklistApi } from "./api.js";
import { dropDraft, loadDraft, saveDraft } from "./mask-drafts.js";
import {
  DEFAULT_HU_RANGE,
  type OverlayName,
  StackViewer,
  type ViewerTool,
  type ViewerWork,
  WINDOW_PRESETS,
  type WindowPreset,
} from "./viewer.js";

type Make = <K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs?: Record<string, string | boolean | undefined>,
  ...children: (Node | string)[]
) => HTMLElementTagNameMap[K];

const TYPE_ABBREVIATIONS = ["EDH", "SDH", "SAH", "IPH", "IVH"] as const;

export class ViewerPanel {
  readonly root: HTMLElement;
  private viewer: StackViewer | undefined;
  private geometry: ViewerResponse["geometry"] | undefined;
  private saveTimer: number | undefined;
  private readonly status: HTMLElement;
  private readonly canvas: HTMLDivElement;
  private readonly toolbar: HTMLElement;
  private readonly frameLabel: HTMLElement;

  constructor(
    private readonly stackId: string,
    private readonly annotator: string,
    private readonly api: () => WorklistApi | undefined,
    h: Make,
    /** Called after every edit (e.g. to update the card). */
    private readonly onEdit: () => void = () => {},
  ) {
    const safe = stackId.replace(/[^A-Za-z0-9_-]/g, "_");
    const open = h("button", { type: "button", "data-action": "open-viewer" }, "Open viewer");
    this.status = h("p", { class: "muted viewer-status", role: "status", "aria-live": "polite" });
    this.canvas = h("div", { class: "viewer-canvas", id: `viewer-${safe}`, "aria-label": `CT of ${stackId}`, tabindex: "0", hidden: true });
    const button = (label: string, action: string, run: () => void, title?: string) => {
      const b = h("button", { type: "button", "data-action": action, ...(title ? { title } : {}) }, label);
      b.addEventListener("click", () => {
        if (this.viewer) run();
      });
      return b;
    };
    const presets = (Object.keys(WINDOW_PRESETS) as WindowPreset[]).map((preset) => {
      const [level, width] = WINDOW_PRESETS[preset];
      return button(
        preset[0]?.toUpperCase() + preset.slice(1),
        `window-${preset}`,
        () => this.viewer?.setWindow(preset),
        `window ${level} / ${width} HU`,
      );
    });
    const overlay = (name: OverlayName, label: string, checked: boolean) => {
      const box = h("input", { type: "checkbox", "data-overlay": name, ...(checked ? { checked: true } : {}) });
      const opacity = h("input", {
        type: "range",
        min: "0",
        max: "100",
        value: "35",
        "aria-label": `${label} opacity`,
        "data-opacity": name,
      });
      const apply = () => this.viewer?.setOverlay(name, box.checked, Number(opacity.value) / 100);
      box.addEventListener("change", apply);
      opacity.addEventListener("input", apply);
      return h("label", { class: "check" }, box, ` ${label} `, opacity);
    };
    const tool = (value: ViewerTool, label: string, checked: boolean) => {
      const radio = h("input", { type: "radio", name: `tool-${safe}`, value, "data-tool": value, ...(checked ? { checked: true } : {}) });
      radio.addEventListener("change", () => this.viewer?.setTool(value));
      return h("label", { class: "check" }, radio, ` ${label}`);
    };
    const size = h("input", { type: "range", min: "1", max: "40", value: "6", "aria-label": "Brush size (pixels)", "data-brush-size": "" });
    // The label painted: 1 untyped, 2 + i for HEMORRHAGE_TYPES[i] (contracts/masks.ts).
    const kinds = [
      "Hemorrhage (no type)",
      ...HEMORRHAGE_TYPES.map((t, i) => `${t[0]?.toUpperCase()}${t.slice(1)} (${TYPE_ABBREVIATIONS[i]})`),
    ];
    const label = h(
      "select",
      { "aria-label": "Label painted", "data-label": "" },
      ...kinds.map((text, i) => h("option", { value: String(i + 1) }, text)),
    );
    label.addEventListener("change", () => this.viewer?.setLabel(Number(label.value)));
    size.addEventListener("input", () => this.viewer?.setBrushSize(Number(size.value)));
    this.toolbar = h(
      "div",
      { class: "viewer-tools", role: "toolbar", "aria-label": `Viewer tools for ${stackId}`, hidden: true },
      h("span", { class: "group" }, "Window: ", ...presets),
      h("span", { class: "group" }, overlay("heatmap", "Heatmap", true), overlay("js", "JS divergence", false)),
      h(
        "span",
        { class: "group" },
        tool("brush", "Brush", true),
        tool("eraser", "Eraser", false),
        tool("threshold", `Brush ${DEFAULT_HU_RANGE[0]}–${DEFAULT_HU_RANGE[1]} HU`, false),
        h("label", {}, " size ", size),
        h("label", {}, " label ", label),
      ),
      h(
        "span",
        { class: "group" },
        button("Undo", "undo", () => this.viewer?.undo()),
        button("Redo", "redo", () => this.viewer?.redo()),
        button("Fill holes (frame)", "fill-holes", () => this.viewer?.fillHolesOnFrame()),
        button("Clear frame", "clear-frame", () => this.viewer?.clearFrame()),
        button("Clear stack", "clear-stack", () => this.viewer?.clearStack()),
        button("Start from the model's suggestion", "suggestion", () => this.viewer?.startFromSuggestion(), "mean heatmap > 0.5"),
      ),
    );
    this.frameLabel = h("p", { class: "viewer-frame", "aria-live": "polite", "data-frame": "" });
    this.root = h(
      "section",
      { class: "viewer", "aria-label": `Viewer of ${stackId}` },
      open,
      this.status,
      this.toolbar,
      this.frameLabel,
      this.canvas,
    );
    open.addEventListener("click", () => void this.open(open));
  }

  get isOpen(): boolean {
    return this.viewer !== undefined;
  }

  get work(): ViewerWork | undefined {
    return this.viewer ? { ...this.viewer.work } : undefined;
  }

  /** Whether any voxel is labeled. */
  hasLabels(): boolean {
    return this.viewer?.labels().some((v) => v !== 0) ?? false;
  }

  private async open(button: HTMLButtonElement): Promise<void> {
    const api = this.api();
    if (!api || this.viewer) return;
    button.disabled = true;
    this.status.textContent = "Loading the CT and overlays…";
    const answer = await api.viewer(this.stackId);
    if (answer.status !== 200 || !answer.body || !("volumes" in answer.body)) {
      const body = answer.body as { code?: string; message?: string } | undefined;
      this.status.textContent = `No viewer: ${body?.message ?? (answer.status === undefined ? "no answer (network failure)" : `HTTP ${answer.status}`)}`;
      button.disabled = false;
      return;
    }
    this.geometry = answer.body.geometry;
    // Visible before Cornerstone takes it: a viewport enabled on a hidden element maps the pointer wrongly.
    this.canvas.hidden = false;
    try {
      this.viewer = await StackViewer.open(this.canvas, answer.body.volumes, () => this.edited());
    } catch (error) {
      this.status.textContent = `The viewer could not load the stack: ${(error as Error).message}`;
      this.canvas.hidden = true;
      button.disabled = false;
      return;
    }
    const showFrame = ({ index, count }: { index: number; count: number }) => {
      this.frameLabel.textContent = `Frame ${index + 1} of ${count}`;
      this.frameLabel.dataset.frame = String(index);
    };
    this.viewer.onFrame = showFrame;
    showFrame(this.viewer.frame());
    const draft = loadDraft(this.annotator, this.stackId, this.geometry);
    if (draft) this.viewer.restore(draft);
    button.hidden = true;
    this.toolbar.hidden = false;
    this.root.dataset.ready = "true";
    const [frames, rows, columns] = this.geometry.shape;
    this.status.textContent = `${frames} frames of ${columns} × ${rows}${draft ? " · your unsaved mask was restored" : ""}. Wheel: frames · right drag: zoom · middle drag: pan.`;
  }

  private edited(): void {
    this.onEdit();
    if (this.saveTimer !== undefined) window.clearTimeout(this.saveTimer);
    this.saveTimer = window.setTimeout(() => this.saveNow(), 300);
  }

  /** Keeps the labels in this browser now (also called before finishing). */
  saveNow(): void {
    if (this.saveTimer !== undefined) window.clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
    if (this.viewer && this.geometry) saveDraft(this.annotator, this.stackId, this.viewer.labels(), this.geometry);
  }

  /** The drawn mask as a gzip'd NIfTI file on the stack's grid. */
  async maskFile(): Promise<Blob | undefined> {
    if (!this.viewer || !this.geometry) return undefined;
    const bytes = maskNiftiBytes(this.viewer.labels(), this.geometry);
    const gzip = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new CompressionStream("gzip"));
    return new Response(gzip).blob();
  }

  /** The completion is recorded: the kept draft is not needed any more. */
  recorded(): void {
    dropDraft(this.annotator, this.stackId);
  }
}
