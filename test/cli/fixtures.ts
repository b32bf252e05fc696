/** Shared by the CLI tests: the golden slide-inference image written as a PNG to predict from. */
import { writeImage } from '../../src/data/image_io.js';
import type { Tensor } from '../../src/tensor/tensor.js';

/** Writes the fixture's slide.image_rgb_u8 (the image mmseg's slide inference ran on) to `file`. */
export async function writeSlideImage(file: string, golden: Map<string, Tensor>): Promise<void> {
  const rgb = golden.get('slide.image_rgb_u8')!;
  const [h, w] = rgb.shape;
  await writeImage(file, { data: rgb.toTypedArray() as Uint8Array, height: h, width: w, channels: 3 });
}
