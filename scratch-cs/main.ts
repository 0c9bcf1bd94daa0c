import { Enums, init as coreInit, RenderingEngine, volumeLoader, setVolumesForViewports, type Types } from "@cornerstonejs/core";
import { cornerstoneNiftiImageLoader, createNiftiImageIdsAndCacheMetadata } from "@cornerstonejs/nifti-volume-loader";
import { imageLoader } from "@cornerstonejs/core";

async function run() {
  await coreInit();
  imageLoader.registerImageLoader("nifti", cornerstoneNiftiImageLoader as never);
  const url = `${location.origin}/ct.nii.gz`;
  const imageIds = await createNiftiImageIdsAndCacheMetadata({ url });
  (window as any).status1 = `imageIds ${imageIds.length}`;
  const engine = new RenderingEngine("re");
  const element = document.getElementById("vp") as HTMLDivElement;
  engine.enableElement({ viewportId: "ct", type: Enums.ViewportType.ORTHOGRAPHIC, element, defaultOptions: { orientation: Enums.OrientationAxis.AXIAL } });
  const volumeId = "nifti-ct";
  const volume = await volumeLoader.createAndCacheVolume(volumeId, { imageIds });
  await volume.load();
  await setVolumesForViewports(engine, [{ volumeId, callback: ({ volumeActor }) => { volumeActor.getProperty().getRGBTransferFunction(0).setMappingRange(0, 80); } }], ["ct"]);
  const vp = engine.getViewport("ct") as Types.IVolumeViewport;
  vp.setProperties({ voiRange: { lower: 0, upper: 80 } });
  vp.render();
  (window as any).done = `ok slices=${vp.getNumberOfSlices?.()} current=${vp.getSliceIndex?.()}`;
}
run().catch((e) => { (window as any).done = `error ${e?.stack ?? e}`; });
