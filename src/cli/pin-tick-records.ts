/**
 * Imported first by the CLI entry point, so it runs before any other module of the process is evaluated: pins the
 * map of Node's nextTick records before start-up's full collections can replace it (see server/tick-records.ts).
 */
import { pinTickRecordShape } from '../server/tick-records.js';

pinTickRecordShape();
