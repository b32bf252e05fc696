/** Expands CLI image arguments: files, directories (their images, sorted) and glob patterns. */
import fs from 'node:fs';
import path from 'node:path';
import { glob } from 'tinyglobby';

export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp', '.bmp', '.tif', '.tiff'];

function isImage(f: string): boolean {
  return IMAGE_EXTENSIONS.includes(path.extname(f).toLowerCase());
}

export async function expandImageArgs(args: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const arg of args) {
    if (fs.existsSync(arg)) {
      if (fs.statSync(arg).isDirectory()) {
        const files = fs
          .readdirSync(arg)
          .filter(isImage)
          .sort()
          .map((f) => path.join(arg, f));
        if (!files.length) throw new Error(`${arg}: no images (${IMAGE_EXTENSIONS.join(', ')}) in this directory`);
        out.push(...files);
      } else {
        out.push(arg);
      }
    } else if (/[*?[{]/.test(arg)) {
      const files = (await glob(arg, { onlyFiles: true })).filter(isImage).sort();
      if (!files.length) throw new Error(`${arg}: the pattern matches no images`);
      out.push(...files);
    } else {
      throw new Error(`${arg}: no such file or directory`);
    }
  }
  return out;
}
