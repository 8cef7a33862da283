import type { Telemetry } from '../../telemetry/recorder.ts';
import type { Definitions } from '../definitions.ts';
import { ExecutionFailure } from '../errors.ts';
import type { ToolRuntime } from '../runtime/tool-runtime.ts';
import { render, textOf } from '../templates.ts';
import { ModelError, type ChatMessage, type ModelProvider } from './model.ts';

export interface AgentRunContext {
  readonly telemetry: Telemetry;
  readonly runtime: ToolRuntime;
  readonly definitions: Definitions;
  readonly providers: ReadonlyMap<string, ModelProvider>;
  readonly executionId: string;
  readonly signal: AbortSignal;
}

/**
 * Runs one agent: `agent.prepare` (definition, instructions, tools), then `agent.execute_sync`, the loop
 * of model turns and tool calls until a final answer or the iteration bound.
 */
export async function runAgent(agentId: string, input: unknown, ctx: AgentRunContext): Promise<unknown> {
  const { telemetry } = ctx;
  const prepared = await telemetry.inSpan('agentPrepare', { 'gen_ai.agent.name': agentId }, async (span) => {
    const agent = ctx.definitions.agents.get(agentId);
    if (!agent) throw new ExecutionFailure(`unknown agent "${agentId}"`, 'unknown_agent');
    const provider = ctx.providers.get(agent.model.provider);
    if (!provider) throw new ExecutionFailure(`agent "${agentId}": no model provider "${agent.model.provider}"`, 'model_config');
    span.setAttributes({ 'gen_ai.provider.name': provider.name, 'gen_ai.request.model': agent.model.name });
    const tools = agent.tools.map((id) => ctx.definitions.tools.get(id)!);
    const instructions = textOf(render(agent.instructions, { input }));
    return { agent, tools, instructions, session: provider.open(agent) };
  });

  const { agent, tools, instructions, session } = prepared;
  return telemetry.inSpan('agentExecuteSync', {
    'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': agent.id, 'gen_ai.request.model': agent.model.name,
  }, async (span) => {
    const messages: ChatMessage[] = [
      { role: 'system', content: instructions },
      { role: 'user', content: typeof input === 'string' ? input : JSON.stringify(input ?? null) },
    ];
    const toolResults: Record<string, unknown> = {};
    let inputTokens = 0;
    let outputTokens = 0;
    for (let iteration = 1; iteration <= agent.max_iterations; iteration++) {
      ctx.signal.throwIfAborted();
      const turn = await telemetry.inSpan('agentModelCall', {
        'gen_ai.operation.name': 'chat', 'gen_ai.provider.name': agent.model.provider, 'gen_ai.request.model': agent.model.name,
      }, async (modelSpan) => {
        try {
          const answer = await session.next({ messages, tools, context: { input, tool_results: toolResults, iteration }, signal: ctx.signal });
          if (answer.usage) modelSpan.setAttributes({ 'gen_ai.usage.input_tokens': answer.usage.inputTokens, 'gen_ai.usage.output_tokens': answer.usage.outputTokens });
          return answer;
        } catch (error) {
          if (error instanceof ModelError) throw new ExecutionFailure(error.message, error.code);
          throw error;
        }
      });
      inputTokens += turn.usage?.inputTokens ?? 0;
      outputTokens += turn.usage?.outputTokens ?? 0;
      span.setAttributes({ 'switchyard.agent.iterations': iteration, 'gen_ai.usage.input_tokens': inputTokens, 'gen_ai.usage.output_tokens': outputTokens });
      if (turn.toolCalls.length === 0) return turn.final ?? null;

      messages.push({ role: 'assistant', content: '', toolCalls: turn.toolCalls });
      for (const call of turn.toolCalls) {
        const tool = tools.find((t) => t.id === call.name);
        let content: unknown;
        if (!tool) {
          content = { error: `agent "${agent.id}" may not call tool "${call.name}"` };
        } else {
          const result = await ctx.runtime.execute({ tool, executionId: ctx.executionId, input: call.arguments, signal: ctx.signal });
          ctx.signal.throwIfAborted();
          content = result.ok ? result.result : { error: result.error.message, kind: result.error.kind };
        }
        toolResults[call.name] = content;
        messages.push({ role: 'tool', toolCallId: call.id, content: JSON.stringify(content) ?? 'null' });
      }
    }
    throw new ExecutionFailure(`agent "${agent.id}" gave no final answer within ${agent.max_iterations} iterations`, 'max_iterations');
  });
}
