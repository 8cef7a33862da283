import { lookup, render, textOf } from '../templates.ts';
import type { AgentDefinition } from '../definitions.ts';
import type { GenAiProvider } from '../../telemetry/catalog.ts';
import { ModelError, type ModelProvider, type ModelRequest, type ModelSession, type ModelTurn } from './model.ts';

/**
 * A deterministic model for offline runs and tests: the agent's YAML declares its turns. Turns are taken
 * in order; a turn with `when` is skipped unless the value at its path matches its pattern, which lets a
 * script choose between final answers (say, a category) from its input or tool results. A turn with
 * `error` fails the call as a provider would (its `type` is the call's error.type); a turn with `repeat`
 * answers every later call too, so a script can loop on tool calls until the agent's iteration bound.
 */
export class ScriptedModelProvider implements ModelProvider {
  readonly name = 'scripted';
  /** No provider of the semantic conventions' registry: a custom value, namespaced as this engine's own. */
  readonly genAiProviderName: GenAiProvider = 'switchyard.scripted';

  open(agent: AgentDefinition): ModelSession {
    let cursor = 0;
    let calls = 0;
    return {
      async next(request: ModelRequest): Promise<ModelTurn> {
        request.signal.throwIfAborted();
        while (cursor < agent.script.length) {
          const turn = agent.script[cursor++]!;
          if (turn.when && !new RegExp(turn.when.matches, 'i').test(textOf(lookup(request.context, turn.when.path)))) continue;
          if (turn.repeat) cursor--;
          if (turn.error) throw new ModelError(turn.error.message ?? `the scripted model of agent "${agent.id}" failed this call (${turn.error.type})`, turn.error.type);
          const inputTokens = estimateTokens(request.messages.map((m) => m.content).join(' '));
          if (turn.final !== undefined) {
            const final = render(turn.final, request.context);
            return {
              toolCalls: [], final, usage: { inputTokens, outputTokens: estimateTokens(JSON.stringify(final) ?? '') },
              responseModel: agent.model.name, finishReasons: ['stop'],
            };
          }
          const toolCalls = (turn.tool_calls ?? []).map((call) => ({
            id: `call_${++calls}`, name: call.tool, arguments: render(call.arguments, request.context),
          }));
          return { toolCalls, usage: { inputTokens, outputTokens: estimateTokens(JSON.stringify(toolCalls)) }, responseModel: agent.model.name, finishReasons: ['tool_calls'] };
        }
        // The script ran out: answer with what the tools returned last.
        return { toolCalls: [], final: request.context['tool_results'] ?? null, responseModel: agent.model.name, finishReasons: ['stop'] };
      },
    };
  }
}

/** Rough token count (4 characters a token) so scripted runs report plausible gen_ai usage. */
function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}
