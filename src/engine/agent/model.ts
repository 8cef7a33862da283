import type { GenAiProvider } from '../../telemetry/catalog.ts';
import type { AgentDefinition } from '../definitions.ts';
import type { ToolDefinition } from '../runtime/tool-runtime.ts';

export interface ChatMessage {
  readonly role: 'system' | 'user' | 'assistant' | 'tool';
  readonly content: string;
  readonly toolCallId?: string;
  readonly toolCalls?: readonly ToolCallRequest[];
}

export interface ToolCallRequest {
  readonly id: string;
  readonly name: string;
  readonly arguments: unknown;
}

/** What the model answered in one turn: tool calls to run, or a final answer. */
export interface ModelTurn {
  readonly toolCalls: readonly ToolCallRequest[];
  readonly final?: unknown;
  readonly usage?: { readonly inputTokens: number; readonly outputTokens: number };
  /** The model that answered, when the provider says (gen_ai.response.model). */
  readonly responseModel?: string;
  /** Why the model stopped, one per choice, when the provider says (gen_ai.response.finish_reasons). */
  readonly finishReasons?: readonly string[];
  /** The provider's id of the completion (gen_ai.response.id). */
  readonly responseId?: string;
  /** Requests the call repeated before this answer (rate limited: 429 and its Retry-After). */
  readonly retries?: number;
}

export interface ModelRequest {
  readonly messages: readonly ChatMessage[];
  readonly tools: readonly ToolDefinition[];
  /** The agent's input and the latest tool results by tool name: what scripted turns render against. */
  readonly context: Record<string, unknown>;
  readonly signal: AbortSignal;
}

/** One conversation with a model; a provider opens one per agent run (scripted turns keep a cursor). */
export interface ModelSession {
  next(request: ModelRequest): Promise<ModelTurn>;
}

export interface ModelProvider {
  /** The provider's key in an agent's YAML (`model.provider`). */
  readonly name: string;
  /** What telemetry reports as gen_ai.provider.name: the registry's value where one applies. */
  readonly genAiProviderName: GenAiProvider;
  open(agent: AgentDefinition): ModelSession;
}

/**
 * A model call that failed. `code` is its error.type (snake_case: model_unreachable, model_http_<status>,
 * model_protocol, timeout, ...), on the model call's span and duration metric, and the run's error code.
 */
export class ModelError extends Error {
  override name = 'ModelError';
  readonly code: string;
  constructor(message: string, code: string) {
    super(message);
    this.code = code;
  }
}
