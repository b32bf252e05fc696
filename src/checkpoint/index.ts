/** Public API of the checkpoint layer (file formats, key conversion, rel-pos table resizing). */
export * from '../common/host_tensor.js';
export { readSafetensors, writeSafetensors, parseSafetensors, type SafetensorsContent } from './safetensors.js';
export {
  unpickle,
  unpickleAt,
  pickleState,
  OpaqueObject,
  StorageType,
  UnpicklingError,
  ALLOWED_GLOBALS,
  INERT_DATA_GLOBALS,
  type UnpickleOptions,
  type UnpickleResult,
  type ForeignGlobals,
} from './pickle.js';
export { DEFAULT_LIMITS, LIMIT_SPECS, resolveLimits, CheckpointLimitError, type CheckpointLimits } from './limits.js';
export { readPth, readPthContent, type PthContent, type PthReadOptions } from './pth.js';
export {
  readCheckpoint,
  extractStateDict,
  type CheckpointDescription,
  type LoadedCheckpoint,
} from './read_checkpoint.js';
export { detectFormat, type CheckpointFormat } from './format.js';
export {
  beit2mmseg,
  beit2mmsegKeys,
  beitKeyToMmseg,
  toMmsegBackbone,
  convertCheckpoint,
  detectLayout,
  expandSharedRelPosBias,
  type CheckpointLayout,
  type ConversionReport,
  type ConversionResult,
} from './beit2mmseg.js';
export {
  resizeRelPosTable,
  resizeRelPosTables,
  geometricRatio,
  geometricSamplePositions,
  targetPositions,
  relPosTableRows,
  windowOfTable,
  type ResizeTablesResult,
} from './relpos_resize.js';
export { convertFile, targetWindow, type ConvertFileOptions, type ConvertFileSummary } from './convert_file.js';
export { inspectFile, type InspectReport } from './inspect_file.js';
export { stateDictStats, isBufferKey, type StateDictStats } from './param_stats.js';
export { toFloat64, fromFloat64 } from './float_convert.js';
export { convertHfBeit, convertLoadedCheckpoint, hfArchitectureOf, type HfBeitConversion } from './hf_beit.js';
export {
  parseHfBeitConfig,
  hfBeitModelConfig,
  hfOutIndicesToMmseg,
  applyHfArchitecture,
  type HfBeitConfig,
} from './hf_beit_config.js';
export { hfBeitToMmseg, mmsegToHfBeit, isHfBeitStateDict } from './hf_beit_keys.js';
export { locateHfBeitFiles, type HfBeitFiles } from './hf_beit_files.js';
export { writeTorchCheckpoint, writeTorchSave } from './pth_writer.js';
export { pickleCheckpoint, type PickleValue } from './pickle_writer.js';
