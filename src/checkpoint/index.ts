/** Public API of the checkpoint layer (file formats, key conversion, rel-pos table resizing). */
export * from '../common/host_tensor.js';
export { readSafetensors, writeSafetensors, parseSafetensors, type SafetensorsContent } from './formats/safetensors.js';
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
} from './formats/pickle.js';
export {
  DEFAULT_LIMITS,
  LIMIT_SPECS,
  resolveLimits,
  CheckpointLimitError,
  type CheckpointLimits,
} from './formats/limits.js';
export { readPth, readPthContent, type PthContent, type PthReadOptions } from './formats/pth.js';
export {
  readCheckpoint,
  extractStateDict,
  type CheckpointDescription,
  type LoadedCheckpoint,
} from './read_checkpoint.js';
export { detectFormat, type CheckpointFormat } from './formats/format.js';
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
} from './convert/beit2mmseg.js';
export {
  resizeRelPosTable,
  resizeRelPosTables,
  geometricRatio,
  geometricSamplePositions,
  targetPositions,
  relPosTableRows,
  windowOfTable,
  type ResizeTablesResult,
} from './convert/relpos_resize.js';
export { convertFile, targetWindow, type ConvertFileOptions, type ConvertFileSummary } from './convert/convert_file.js';
export { inspectFile, type InspectReport } from './inspect_file.js';
export { stateDictStats, isBufferKey, type StateDictStats } from './param_stats.js';
export { toFloat64, fromFloat64 } from './formats/float_convert.js';
export { convertHfBeit, convertLoadedCheckpoint, hfArchitectureOf, type HfBeitConversion } from './convert/hf_beit.js';
export {
  parseHfBeitConfig,
  hfBeitModelConfig,
  hfOutIndicesToMmseg,
  applyHfArchitecture,
  type HfBeitConfig,
} from './convert/hf_beit_config.js';
export { hfBeitToMmseg, mmsegToHfBeit, isHfBeitStateDict } from './convert/hf_beit_keys.js';
export { locateHfBeitFiles, type HfBeitFiles } from './convert/hf_beit_files.js';
export { writeTorchCheckpoint, writeTorchSave } from './formats/pth_writer.js';
export { pickleCheckpoint, type PickleValue } from './formats/pickle_writer.js';
