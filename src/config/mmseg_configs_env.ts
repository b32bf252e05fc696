/**
 * The environment variable naming mmsegmentation's configs folder (where `_base_ = 'mmseg::...'`
 * files are read), in a module of its own so the CLI's option definitions can name it without
 * loading the config evaluator.
 */
export const MMSEG_CONFIGS_ENV = 'BEITSEG_MMSEG_CONFIGS';
