// echo: returns its input unchanged. The trivial tool the benchmarks use to measure the tool-call floor.
import { runTool } from './lib/tool.ts';

runTool((input) => ({ echo: input }));
