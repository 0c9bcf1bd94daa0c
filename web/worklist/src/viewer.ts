/**
 * The annotators' CT viewer and segmentation tools, on Cornerstone3D (`@cornerstonejs/core`, `tools`,
 * `nifti-volume-loader`):
 *
 *   GET /stacks/{id}/viewer → presigned GETs of ct / heatmap / js (NIfTI on the stack's grid, written by
 *   the scoring container) → one orthographic axial viewport: CT with window presets, the heatmap and
 *   the JS divergence as coloured layers with opacity → a labelmap derived from the CT (same grid)
 *   → brush, eraser, brush limited to an HU range, the label painted (untyped or a hemorrhage type), per-frame hole fill, undo / redo, clear frame /
 *   stack, start from the model's suggestion (mean heatmap > 0.5) → `labels()` in the mask file's
 *   voxel order (domain/mask-nifti-bytes.ts) → the page uploads it through the presigned PUT.
 *
 * Voxel order: the loader builds one image per NIfTI frame (`…?frame=k`) and the volume stacks them in
 * its own sorted order, each frame's pixels unchanged (column fastest); `labels()` and `restore()` map
 * volume slices back to NIfTI frames by those image ids, so a mask drawn here lies on the grid the API
 * checks. Mouse: left draws with the active tool, wheel scrolls frames, right drag zooms, middle pans.
 */
import {
  Enums as CoreEnums,
  cache,
  init as coreInit,
  utilities as coreUtils,
  imageLoader,
  RenderingEngine,
  setVolumesForViewports,
  type Types,
  volumeLoader,
} from "@cornerstonejs/core";
import { cornerstoneNiftiImageLoader, createNiftiImageIdsAndCacheMetadata } from "@cornerstonejs/nifti-volume-loader";
import {
  addTool,
  BrushTool,
  PanTool,
  StackScrollTool,
  segmentation,
  ToolGroupManager,
  Enums as ToolsEnums,
  init as toolsInit,
  utilities as toolsUtils,
  ZoomTool,
} from "@cornerstonejs/tools";

/** Window presets (level / width in HU). */
export const WINDOW_PRESETS = { brain: [40, 80], subdural: [80, 200], bone: [600, 2800] } as const;
export type WindowPreset = keyof typeof WINDOW_PRESETS;
/** The default HU range of the limited brush: acute blood. */
export const DEFAULT_HU_RANGE: [number, number] = [40, 90];
export type ViewerTool = "brush" | "eraser" | "threshold";
export type OverlayName = "heatmap" | "js";

export interface ViewerVolumes {
  readonly ct: string;
  readonly heatmap: string;
  readonly js: string;
}

/** What the completion reports of the work done here. */
export interface ViewerWork {
  strokes: number;
  edits: number;
  startedFromSuggestion: boolean;
}

const TOOL_NAMES: Record<ViewerTool, string> = { brush: "CircularBrush", eraser: "CircularEraser", threshold: "ThresholdBrush" };
const OVERLAY_COLORMAPS: Record<OverlayName, string> = { heatmap: "jet", js: "Cool to Warm" };

let ready: Promise<void> | undefined;
let opened = 0;

/** Cornerstone's one-time setup: core, tools, the NIfTI loader, the tool classes. */
function setUp(): Promise<void> {
  ready ??= (async () => {
    await coreInit();
    toolsInit();
    imageLoader.registerImageLoader("nifti", cornerstoneNiftiImageLoader as never);
    for (const tool of [BrushTool, StackScrollTool, ZoomTool, PanTool]) addTool(tool);
  })();
  return ready;
}

/** The NIfTI frame index of each volume slice (from the loader's `?frame=k` image ids). */
function framesOf(volume: Types.IImageVolume): number[] {
  return volume.imageIds.map((id, slice) => {
    const match = /[?&]frame=(\d+)/.exec(id);
    return match ? Number(match[1]) : slice;
  });
}

export class StackViewer {
  readonly work: ViewerWork = { strokes: 0, edits: 0, startedFromSuggestion: false };
  private readonly engine: RenderingEngine;
  private readonly viewportId: string;
  private readonly toolGroupId: string;
  private readonly ids: { ct: string; heatmap: string; js: string; labels: string };
  private readonly frames: number[];
  private readonly sliceSize: number;
  private readonly onChange: () => void;
  private readonly listeners: [string, EventListener][] = [];
  private brushSize = 6;
  /** The label the tools paint (1 untyped, 2–6 a hemorrhage type; contracts/masks.ts). */
  private label = 1;
  /** Called with the frame shown (`frame()`) whenever it changes. */
  onFrame: ((frame: { index: number; count: number }) => void) | undefined;

  private constructor(
    private readonly element: HTMLDivElement,
    parts: {
      engine: RenderingEngine;
      viewportId: string;
      toolGroupId: string;
      ids: StackViewer["ids"];
      frames: number[];
      sliceSize: number;
      onChange: () => void;
    },
  ) {
    this.engine = parts.engine;
    this.viewportId = parts.viewportId;
    this.toolGroupId = parts.toolGroupId;
    this.ids = parts.ids;
    this.frames = parts.frames;
    this.sliceSize = parts.sliceSize;
    this.onChange = parts.onChange;
  }

  /** Loads the three volumes into `element` and sets the tools up (brush active). */
  static async open(element: HTMLDivElement, volumes: ViewerVolumes, onChange: () => void = () => {}): Promise<StackViewer> {
    await setUp();
    const n = ++opened;
    const ids = { ct: `nifti-ct-${n}`, heatmap: `nifti-heatmap-${n}`, js: `nifti-js-${n}`, labels: `labels-${n}` };
    const load = async (url: string, volumeId: string) => {
      const imageIds = await createNiftiImageIdsAndCacheMetadata({ url });
      const volume = await volumeLoader.createAndCacheVolume(volumeId, { imageIds });
      await new Promise<void>((resolve) => volume.load(() => resolve()));
      return volume;
    };
    const [ct] = await Promise.all([load(volumes.ct, ids.ct), load(volumes.heatmap, ids.heatmap), load(volumes.js, ids.js)]);
    const engine = new RenderingEngine(`engine-${n}`);
    const viewportId = `viewport-${n}`;
    engine.enableElement({
      viewportId,
      type: CoreEnums.ViewportType.ORTHOGRAPHIC,
      element,
      defaultOptions: { orientation: CoreEnums.OrientationAxis.AXIAL, background: [0, 0, 0] as Types.Point3 },
    });
    await setVolumesForViewports(engine, [{ volumeId: ids.ct }, { volumeId: ids.heatmap }, { volumeId: ids.js }], [viewportId]);
    await volumeLoader.createAndCacheDerivedLabelmapVolume(ids.ct, { volumeId: ids.labels });
    segmentation.addSegmentations([
      {
        segmentationId: ids.labels,
        representation: { type: ToolsEnums.SegmentationRepresentations.Labelmap, data: { volumeId: ids.labels } },
      },
    ]);
    await segmentation.addLabelmapRepresentationToViewport(viewportId, [{ segmentationId: ids.labels }]);
    segmentation.segmentIndex.setActiveSegmentIndex(ids.labels, 1);

    const toolGroupId = `tools-${n}`;
    const group = ToolGroupManager.createToolGroup(toolGroupId);
    if (!group) throw new Error("the viewer's tool group could not be created");
    group.addViewport(viewportId, engine.id);
    group.addToolInstance(TOOL_NAMES.brush, BrushTool.toolName, { activeStrategy: "FILL_INSIDE_CIRCLE" });
    group.addToolInstance(TOOL_NAMES.eraser, BrushTool.toolName, { activeStrategy: "ERASE_INSIDE_CIRCLE" });
    group.addToolInstance(TOOL_NAMES.threshold, BrushTool.toolName, { activeStrategy: "THRESHOLD_INSIDE_CIRCLE" });
    group.addTool(StackScrollTool.toolName);
    group.addTool(ZoomTool.toolName);
    group.addTool(PanTool.toolName);
    group.setToolActive(StackScrollTool.toolName, { bindings: [{ mouseButton: ToolsEnums.MouseBindings.Wheel }] });
    group.setToolActive(ZoomTool.toolName, { bindings: [{ mouseButton: ToolsEnums.MouseBindings.Secondary }] });
    group.setToolActive(PanTool.toolName, { bindings: [{ mouseButton: ToolsEnums.MouseBindings.Auxiliary }] });

    const viewer = new StackViewer(element, {
      engine,
      viewportId,
      toolGroupId,
      ids,
      frames: framesOf(ct),
      sliceSize: ct.dimensions[0] * ct.dimensions[1],
      onChange,
    });
    viewer.setTool("brush");
    viewer.setBrushSize(viewer.brushSize);
    viewer.setHuRange(DEFAULT_HU_RANGE);
    viewer.setWindow("brain");
    viewer.setOverlay("heatmap", true, 0.35);
    viewer.setOverlay("js", false, 0.35);
    // A stroke is one press of the primary button with a drawing tool (eraser included).
    viewer.listen("mouseup", (event) => {
      if ((event as MouseEvent).button === 0) {
        viewer.work.strokes += 1;
        viewer.onChange();
      }
    });
    element.addEventListener("contextmenu", (event) => event.preventDefault());
    viewer.listen(CoreEnums.Events.VOLUME_NEW_IMAGE, () => viewer.onFrame?.(viewer.frame()));
    viewer.render();
    return viewer;
  }

  private listen(type: string, handler: EventListener): void {
    this.element.addEventListener(type, handler);
    this.listeners.push([type, handler]);
  }

  private get viewport(): Types.IVolumeViewport {
    return this.engine.getViewport(this.viewportId) as Types.IVolumeViewport;
  }

  private get group() {
    const group = ToolGroupManager.getToolGroup(this.toolGroupId);
    if (!group) throw new Error("the viewer's tool group is gone");
    return group;
  }

  render(): void {
    this.viewport.render();
  }

  setWindow(preset: WindowPreset): void {
    const [level, width] = WINDOW_PRESETS[preset];
    this.viewport.setProperties({ voiRange: { lower: level - width / 2, upper: level + width / 2 } }, this.ids.ct);
    this.render();
  }

  /**
   * Shows or hides one overlay layer at `opacity` (0–1). Low values are transparent (the CT shows through
   * where the model sees nothing), rising to `opacity` at the top of the 0–255 scale.
   */
  setOverlay(name: OverlayName, visible: boolean, opacity: number): void {
    const volumeId = this.ids[name];
    const ramp = [
      { value: 0, opacity: 0 },
      { value: 25, opacity: 0 },
      { value: 128, opacity: 0.75 },
      { value: 255, opacity: 1 },
    ];
    this.viewport.setProperties(
      {
        voiRange: { lower: 0, upper: 255 },
        colormap: { name: OVERLAY_COLORMAPS[name], opacity: ramp.map((p) => ({ ...p, opacity: p.opacity * (visible ? opacity : 0) })) },
      },
      volumeId,
    );
    // Slices are rendered by ray casting through a thin slab: at the default opacity unit distance (1 mm)
    // a layer is nearly transparent, so the unit is made short enough that the ramp's opacity shows.
    for (const entry of this.viewport.getActors()) {
      if (entry.referencedId === volumeId) (entry.actor as Types.VolumeActor).getProperty().setScalarOpacityUnitDistance(0, 0.05);
    }
    this.render();
  }

  setTool(tool: ViewerTool): void {
    const group = this.group;
    for (const name of Object.values(TOOL_NAMES)) group.setToolPassive(name);
    group.setToolActive(TOOL_NAMES[tool], { bindings: [{ mouseButton: ToolsEnums.MouseBindings.Primary }] });
  }

  setBrushSize(pixels: number): void {
    this.brushSize = pixels;
    for (const name of Object.values(TOOL_NAMES)) toolsUtils.segmentation.setBrushSizeForToolGroup(this.toolGroupId, pixels, name);
  }

  /** The HU range the limited brush paints (default 40–90). */
  setHuRange(range: [number, number]): void {
    toolsUtils.segmentation.setBrushThresholdForToolGroup(this.toolGroupId, { range, isDynamic: false, dynamicRadius: 0 });
  }

  /** Paints `value` from now on: 1 hemorrhage of no given type, 2 + i for HEMORRHAGE_TYPES[i]. */
  setLabel(value: number): void {
    this.label = value;
    segmentation.segmentIndex.setActiveSegmentIndex(this.ids.labels, value);
  }

  undo(): void {
    coreUtils.HistoryMemo.DefaultHistoryMemo.undo();
    this.edited();
  }

  redo(): void {
    coreUtils.HistoryMemo.DefaultHistoryMemo.redo();
    this.edited();
  }

  /** The labelmap's voxels in volume order (a live view: edits through `write`). */
  private data(): Uint8Array {
    const volume = cache.getVolume(this.ids.labels);
    const values = volume?.voxelManager?.getCompleteScalarDataArray?.();
    if (!values) throw new Error("the labelmap is not loaded");
    return values instanceof Uint8Array ? values : Uint8Array.from(values as ArrayLike<number>);
  }

  private write(values: Uint8Array): void {
    const volume = cache.getVolume(this.ids.labels);
    volume?.voxelManager?.setCompleteScalarDataArray?.(values);
    segmentation.triggerSegmentationEvents.triggerSegmentationDataModified(this.ids.labels);
    this.render();
  }

  private edited(): void {
    this.work.edits += 1;
    this.onChange();
  }

  /** The volume slice shown now. */
  private currentSlice(): number {
    const imageId = this.viewport.getCurrentImageId();
    const volume = cache.getVolume(this.ids.ct);
    const slice = imageId && volume ? volume.imageIds.indexOf(imageId) : -1;
    return slice >= 0 ? slice : this.viewport.getSliceIndex();
  }

  /** The NIfTI frame shown (0-based; the mask file's frame index) and how many there are. */
  frame(): { index: number; count: number } {
    return { index: this.frames[this.currentSlice()] ?? 0, count: this.frames.length };
  }

  /** Fills background regions of the shown frame that do not touch its border. */
  fillHolesOnFrame(): void {
    const values = this.data().slice();
    const [columns, rows] = this.dimensions();
    const offset = this.currentSlice() * this.sliceSize;
    const outside = new Uint8Array(this.sliceSize);
    const queue: number[] = [];
    for (let i = 0; i < this.sliceSize; i++) {
      const x = i % columns;
      const y = Math.floor(i / columns);
      if ((x === 0 || y === 0 || x === columns - 1 || y === rows - 1) && values[offset + i] === 0) {
        outside[i] = 1;
        queue.push(i);
      }
    }
    while (queue.length > 0) {
      const i = queue.pop() as number;
      const x = i % columns;
      for (const j of [x > 0 ? i - 1 : -1, x < columns - 1 ? i + 1 : -1, i - columns, i + columns]) {
        if (j >= 0 && j < this.sliceSize && !outside[j] && values[offset + j] === 0) {
          outside[j] = 1;
          queue.push(j);
        }
      }
    }
    for (let i = 0; i < this.sliceSize; i++) if (!outside[i] && values[offset + i] === 0) values[offset + i] = this.label;
    this.write(values);
    this.edited();
  }

  clearFrame(): void {
    const values = this.data().slice();
    const offset = this.currentSlice() * this.sliceSize;
    values.fill(0, offset, offset + this.sliceSize);
    this.write(values);
    this.edited();
  }

  clearStack(): void {
    this.write(new Uint8Array(this.data().length));
    this.edited();
  }

  /** Replaces the labels with the model's suggestion: mean heatmap > 0.5, as the label chosen (recorded on the completion). */
  startFromSuggestion(): void {
    const heat = cache.getVolume(this.ids.heatmap)?.voxelManager?.getCompleteScalarDataArray?.();
    if (!heat) throw new Error("the heatmap is not loaded");
    const values = new Uint8Array(heat.length);
    for (let i = 0; i < heat.length; i++) values[i] = (heat[i] as number) > 127.5 ? this.label : 0;
    this.write(values);
    this.work.startedFromSuggestion = true;
    this.edited();
  }

  private dimensions(): [number, number, number] {
    const volume = cache.getVolume(this.ids.ct);
    if (!volume) throw new Error("the CT volume is not loaded");
    return volume.dimensions as [number, number, number];
  }

  /** The labels in the mask file's order: NIfTI frame k, then row, then column (column fastest). */
  labels(): Uint8Array {
    const values = this.data();
    const out = new Uint8Array(values.length);
    this.frames.forEach((frame, slice) => {
      out.set(values.subarray(slice * this.sliceSize, (slice + 1) * this.sliceSize), frame * this.sliceSize);
    });
    return out;
  }

  /** Puts labels (mask-file order, e.g. kept in the browser before a reload) back into the labelmap. */
  restore(labels: Uint8Array): void {
    const values = new Uint8Array(labels.length);
    this.frames.forEach((frame, slice) => {
      values.set(labels.subarray(frame * this.sliceSize, (frame + 1) * this.sliceSize), slice * this.sliceSize);
    });
    this.write(values);
  }

  destroy(): void {
    for (const [type, handler] of this.listeners) this.element.removeEventListener(type, handler);
    ToolGroupManager.destroyToolGroup(this.toolGroupId);
    segmentation.removeSegmentation(this.ids.labels);
    this.engine.destroy();
    for (const id of Object.values(this.ids)) cache.removeVolumeLoadObject(id);
  }
}
