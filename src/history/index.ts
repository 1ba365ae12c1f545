// Public face of src/history: the run-history store that makes the pre-flight estimate learn.
export { stateDir, historyDir, STATE_DIR_ENV } from './paths.ts';
export { currentMachine, machineKey, hardwareKey, describeMachine, machineOfEnvironment, machineSchema } from './machine.ts';
export type { Machine } from './machine.ts';
export { historyRecordSchema, HISTORY_RECORD_VERSION } from './schema.ts';
export type { HistoryRecord, HistoryKey } from './schema.ts';
export { appendHistoryRecord, readHistory, SEGMENT_BYTES, CLOSED_SEGMENTS_PER_HOST, MAX_FILES } from './store.ts';
export type { LoadedHistory, AppendOutcome } from './store.ts';
export { historyRecordOf, recordRunInHistory } from './record.ts';
