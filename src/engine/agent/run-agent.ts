import {
  ATTR_ERROR_TYPE,
  ATTR_GEN_AI_AGENT_NAME,
  ATTR_GEN_AI_OPERATION_NAME,
  ATTR_GEN_AI_PROVIDER_NAME,
  ATTR_GEN_AI_REQUEST_MODEL,
  ATTR_GEN_AI_RESPONSE_FINISH_REASONS,
  ATTR_GEN_AI_RESPONSE_ID,
  ATTR_GEN_AI_RESPONSE_MODEL,
  ATTR_GEN_AI_USAGE_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_OUTPUT_TOKENS,
  GEN_AI_OPERATION_NAME_VALUE_CHAT,
  GEN_AI_OPERATION_NAME_VALUE_INVOKE_AGENT,
} from '@opentelemetry/semantic-conventions/incubating';
import type { Attributes } from '@opentelemetry/api';
import type { GenAiProvider, GenAiTokenType } from '../../telemetry/catalog.ts';
import type { AgentOutcome } from '../../domain.ts';
import { errorTypeOf } from '../../telemetry/error-type.ts';
import type { Telemetry } from '../../telemetry/recorder.ts';
import type { Definitions } from '../definitions.ts';
import { ExecutionFailure } from '../errors.ts';
import type { PriceTable } from '../prices.ts';
import type { ToolRuntime } from '../runtime/tool-runtime.ts';
import { redactText, secretForms, secretInputValues } from '../secrets.ts';
import { render, textOf } from '../templates.ts';
import { ModelError, type ChatMessage, type ModelProvider, type ModelTurn } from './model.ts';

export interface AgentRunContext {
  readonly telemetry: Telemetry;
  readonly runtime: ToolRuntime;
  readonly definitions: Definitions;
  readonly providers: ReadonlyMap<string, ModelProvider>;
  readonly executionId: string;
  readonly signal: AbortSignal;
  /** Prices of models (the project's prices.yaml); without it, or for a model it lacks, no cost is counted. */
  readonly prices?: PriceTable;
  /** The workflow the agent runs in, for the cost and token metrics; absent for an agent or task run on its own. */
  readonly workflowId?: string;
  /** The run's secret values: those of the tool calls the agent makes are added as they happen. */
  readonly secrets?: Set<string>;
  /** Called when a tool call added secrets the run did not know (what is stored already is redacted again). */
  readonly onSecretsLearned?: () => Promise<void>;
}

/** Where a run was when it failed: what its outcome counts as. */
type Phase = 'prepare' | 'model' | 'tool';

/**
 * Runs one agent: `agent.prepare` (definition, instructions, tools), then `agent.execute_sync`, the loop
 * of model turns and tool calls until a final answer or the iteration bound.
 *
 * Every model call records the semantic conventions' gen_ai.client.operation.duration (failed calls too,
 * with error.type) and gen_ai.client.token.usage (when the provider reports usage), plus the tokens and
 * their cost by agent and workflow. Every run records its model turns, tool calls and outcome. A tool call
 * that fails is told to the model, which decides what to do; the run's outcome is `tool_error` only when
 * running the tool itself threw.
 */
export async function runAgent(agentId: string, input: unknown, ctx: AgentRunContext): Promise<unknown> {
  const { telemetry } = ctx;
  // Set inside the spans' callbacks: typed wide so that the catch below does not narrow it to 'prepare'.
  let phase = 'prepare' as Phase;
  let turns = 0;
  let toolCalls = 0;
  let outcome: AgentOutcome = 'model_error';
  try {
    const prepared = await telemetry.inSpan('agentPrepare', { [ATTR_GEN_AI_AGENT_NAME]: agentId }, async (span) => {
      const agent = ctx.definitions.agents.get(agentId);
      if (!agent) throw new ExecutionFailure(`unknown agent "${agentId}"`, 'unknown_agent');
      const provider = ctx.providers.get(agent.model.provider);
      if (!provider) throw new ExecutionFailure(`agent "${agentId}": no model provider "${agent.model.provider}"`, 'model_config');
      span.setAttributes({ [ATTR_GEN_AI_PROVIDER_NAME]: provider.genAiProviderName, [ATTR_GEN_AI_REQUEST_MODEL]: agent.model.name });
      const tools = agent.tools.map((id) => ctx.definitions.tools.get(id)!);
      const instructions = textOf(render(agent.instructions, { input }));
      return { agent, tools, instructions, providerName: provider.genAiProviderName, session: provider.open(agent) };
    });

    const { agent, tools, instructions, providerName, session } = prepared;
    const model = agent.model.name;
    const output = await telemetry.inSpan('agentExecuteSync', {
      [ATTR_GEN_AI_OPERATION_NAME]: GEN_AI_OPERATION_NAME_VALUE_INVOKE_AGENT, [ATTR_GEN_AI_AGENT_NAME]: agent.id,
      [ATTR_GEN_AI_PROVIDER_NAME]: providerName, [ATTR_GEN_AI_REQUEST_MODEL]: model,
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
        phase = 'model';
        turns = iteration;
        // Ended here rather than by runInSpan, so the span and the metric get the same error.type; active
        // while the provider runs, so its HTTP request (the undici instrumentation's CLIENT span) is its child.
        const modelSpan = telemetry.startSpan('agentModelCall', {
          [ATTR_GEN_AI_OPERATION_NAME]: GEN_AI_OPERATION_NAME_VALUE_CHAT, [ATTR_GEN_AI_PROVIDER_NAME]: providerName, [ATTR_GEN_AI_REQUEST_MODEL]: model,
        });
        const started = performance.now();
        let turn: ModelTurn;
        try {
          turn = await telemetry.withActiveSpan(modelSpan, () => session.next({ messages, tools, context: { input, tool_results: toolResults, iteration }, signal: ctx.signal }));
          modelSpan.setAttributes(responseAttributes(turn));
        } catch (caught) {
          // A server's error text may quote the request: the run's secrets (its tools' secret inputs so far)
          // leave in no message, span or stored error.
          const thrown = caught instanceof ModelError && ctx.secrets?.size
            ? new ModelError(redactText(caught.message, secretForms(ctx.secrets)), caught.code) : caught;
          // A stopped run: what stopped it (its StopSignal: timeout, canceled, shutdown) is the call's error.
          const error = ctx.signal.aborted && ctx.signal.reason instanceof Error ? ctx.signal.reason : thrown;
          const errorType = errorTypeOf(error, ctx.signal.aborted ? 'canceled' : undefined);
          recordModelCall(ctx, { agentId: agent.id, providerName, model, seconds: (performance.now() - started) / 1000, errorType });
          telemetry.markFailed(modelSpan, error, errorType);
          if (thrown instanceof ModelError) throw new ExecutionFailure(thrown.message, thrown.code);
          throw thrown;
        } finally {
          telemetry.endSpan(modelSpan);
        }
        recordModelCall(ctx, { agentId: agent.id, providerName, model, seconds: (performance.now() - started) / 1000, turn });
        inputTokens += turn.usage?.inputTokens ?? 0;
        outputTokens += turn.usage?.outputTokens ?? 0;
        span.setAttributes({
          'switchyard.agent.iterations': iteration,
          [ATTR_GEN_AI_USAGE_INPUT_TOKENS]: inputTokens, [ATTR_GEN_AI_USAGE_OUTPUT_TOKENS]: outputTokens,
          ...(turn.responseModel !== undefined && { [ATTR_GEN_AI_RESPONSE_MODEL]: turn.responseModel }),
        });
        if (turn.toolCalls.length === 0) return turn.final ?? null;

        phase = 'tool';
        messages.push({ role: 'assistant', content: '', toolCalls: turn.toolCalls });
        for (const call of turn.toolCalls) {
          toolCalls++;
          const tool = tools.find((t) => t.id === call.name);
          let content: unknown;
          if (!tool) {
            content = { error: `agent "${agent.id}" may not call tool "${call.name}"` };
          } else {
            const known = ctx.secrets?.size ?? 0;
            for (const secret of secretInputValues(tool.secretInputs, call.arguments)) ctx.secrets?.add(secret);
            if ((ctx.secrets?.size ?? 0) > known) await ctx.onSecretsLearned?.();
            const result = await ctx.runtime.execute({ tool, executionId: ctx.executionId, input: call.arguments, signal: ctx.signal, secrets: ctx.secrets });
            ctx.signal.throwIfAborted();
            content = result.ok ? result.result : { error: result.error.message, kind: result.error.kind };
          }
          toolResults[call.name] = content;
          messages.push({ role: 'tool', toolCallId: call.id, content: JSON.stringify(content) ?? 'null' });
        }
      }
      throw new ExecutionFailure(`agent "${agent.id}" gave no final answer within ${agent.max_iterations} iterations`, 'max_iterations');
    });
    outcome = 'final_answer';
    return output;
  } catch (error) {
    outcome = ctx.signal.aborted ? 'canceled'
      : error instanceof ExecutionFailure && error.code === 'max_iterations' ? 'iteration_limit'
      : phase === 'tool' ? 'tool_error'
      : 'model_error';
    throw error;
  } finally {
    const labels = { gen_ai_agent_name: agentId, outcome };
    telemetry.add('agentRuns', 1, labels);
    telemetry.record('agentRunModelTurns', turns, labels);
    telemetry.record('agentRunToolCalls', toolCalls, labels);
  }
}

/** gen_ai.response.* and gen_ai.usage.* of one model call, those the provider returned. */
function responseAttributes(turn: ModelTurn): Attributes {
  const attributes: Attributes = {};
  if (turn.responseModel !== undefined) attributes[ATTR_GEN_AI_RESPONSE_MODEL] = turn.responseModel;
  if (turn.responseId !== undefined) attributes[ATTR_GEN_AI_RESPONSE_ID] = turn.responseId;
  if (turn.finishReasons && turn.finishReasons.length > 0) attributes[ATTR_GEN_AI_RESPONSE_FINISH_REASONS] = [...turn.finishReasons];
  if (turn.retries) attributes['switchyard.model.retries'] = turn.retries;
  if (turn.usage) {
    attributes[ATTR_GEN_AI_USAGE_INPUT_TOKENS] = turn.usage.inputTokens;
    attributes[ATTR_GEN_AI_USAGE_OUTPUT_TOKENS] = turn.usage.outputTokens;
  }
  return attributes;
}

interface ModelCall {
  readonly agentId: string;
  readonly providerName: GenAiProvider;
  readonly model: string;
  readonly seconds: number;
  /** The answer of a call that succeeded. */
  readonly turn?: ModelTurn;
  /** error.type of a call that failed. */
  readonly errorType?: string;
}

/** The metrics of one model call: the conventions' duration and token usage, and tokens and cost by agent and workflow. */
function recordModelCall(ctx: AgentRunContext, call: ModelCall): void {
  const { telemetry } = ctx;
  const common = {
    gen_ai_operation_name: GEN_AI_OPERATION_NAME_VALUE_CHAT,
    gen_ai_provider_name: call.providerName,
    gen_ai_request_model: call.model,
    gen_ai_response_model: call.turn?.responseModel,
  } as const;
  telemetry.record('genAiClientOperationDuration', call.seconds, { ...common, error_type: call.errorType });
  const usage = call.turn?.usage;
  if (!usage) return;
  const tokens: ReadonlyArray<[GenAiTokenType, number]> = [['input', usage.inputTokens], ['output', usage.outputTokens]];
  for (const [type, count] of tokens) {
    if (!Number.isFinite(count) || count < 0) continue;
    telemetry.record('genAiClientTokenUsage', count, { ...common, gen_ai_token_type: type });
    const byRun = { gen_ai_agent_name: call.agentId, workflow_id: ctx.workflowId ?? 'none', gen_ai_request_model: call.model, gen_ai_token_type: type };
    telemetry.add('agentModelTokens', count, byRun);
    const cost = ctx.prices?.costOf(call.model, type, count);
    if (cost !== undefined) telemetry.add('agentModelCost', cost, byRun);
  }
}
