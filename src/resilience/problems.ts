/** Problem types of resilience testing (docs/DORA.md, docs/PROBLEMS.md). */
import { problemType } from '../pipeline/problem.js';

/** An abort injected by a fault, with a status that stands for no real failure kind (a 5xx keeps its real kind). */
export const FAULT_INJECTED = problemType('fault-injected', 503, 'Fault injected');

export const RESILIENCE_PROBLEMS = [FAULT_INJECTED] as const;
