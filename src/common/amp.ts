/**
 * mmseg's AMP names (`--amp`, `optim_wrapper.dtype`) as autocast dtypes, for every command and the
 * trainer: bf16 and fp16 turn autocast on, fp32 (or nothing) leaves it off.
 */
export type AmpName = 'bf16' | 'fp16' | 'fp32';

export function autocastDTypeOf(name: AmpName | null | undefined): 'bfloat16' | 'float16' | null {
  if (name === 'bf16') return 'bfloat16';
  if (name === 'fp16') return 'float16';
  return null;
}
