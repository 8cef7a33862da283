import { GEN_AI_PROVIDER_NAME_VALUE_OPENAI } from '@opentelemetry/semantic-conventions/incubating';
import type { GenAiProvider } from '../../telemetry/catalog.ts';
import type { AgentDefinition } from '../definitions.ts';
import { ModelError, type ChatMessage, type ModelProvider, type ModelRequest, type ModelSession, type ModelTurn } from './model.ts';

export interface OpenAiCompatibleOptions {
  /** Used when an agent's model names no base_url: e.g. http://localhost:11434/v1 for Ollama. */
  readonly defaultBaseUrl?: string;
  readonly defaultApiKey?: string;
  readonly env?: NodeJS.ProcessEnv;
}

/** Chat completions over HTTP: OpenAI, Ollama, vLLM and anything else that speaks the same protocol. */
export class OpenAiCompatibleProvider implements ModelProvider {
  readonly name = 'openai-compatible';
  /**
   * `openai` whatever server answers (Ollama, vLLM, ...): the conventions set gen_ai.provider.name by the
   * client's best knowledge, and this client speaks OpenAI's API; gen_ai.response.model tells the rest.
   */
  readonly genAiProviderName: GenAiProvider = GEN_AI_PROVIDER_NAME_VALUE_OPENAI;
  readonly #options: OpenAiCompatibleOptions;

  constructor(options: OpenAiCompatibleOptions = {}) {
    this.#options = options;
  }

  open(agent: AgentDefinition): ModelSession {
    const baseUrl = agent.model.base_url ?? this.#options.defaultBaseUrl;
    if (!baseUrl) throw new ModelError(`agent "${agent.id}": model.base_url is not set and SWITCHYARD_MODEL_BASE_URL is empty`, 'model_config');
    const env = this.#options.env ?? process.env;
    const apiKey = agent.model.api_key_env ? env[agent.model.api_key_env] : this.#options.defaultApiKey;
    const url = `${baseUrl.replace(/\/+$/, '')}/chat/completions`;

    return {
      async next(request: ModelRequest): Promise<ModelTurn> {
        const body = {
          model: agent.model.name,
          temperature: agent.model.temperature,
          messages: request.messages.map(toWire),
          tools: request.tools.length === 0 ? undefined : request.tools.map((tool) => ({
            type: 'function',
            function: { name: tool.id, description: tool.description, parameters: tool.inputSchema ?? { type: 'object' } },
          })),
        };
        let response: Response;
        try {
          response = await fetch(url, {
            method: 'POST',
            headers: { 'content-type': 'application/json', ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}) },
            body: JSON.stringify(body),
            signal: request.signal,
          });
        } catch (error) {
          if (request.signal.aborted) throw error;
          throw new ModelError(`model request to ${url} failed: ${(error as Error).message}`, 'model_unreachable');
        }
        if (!response.ok) {
          const detail = (await response.text().catch(() => '')).slice(0, 500);
          throw new ModelError(`model answered HTTP ${response.status}: ${detail}`, `model_http_${response.status}`);
        }
        const payload = (await response.json().catch(() => undefined)) as CompletionResponse | undefined;
        const message = payload?.choices?.[0]?.message;
        if (!message) throw new ModelError('model answer has no choices[0].message', 'model_protocol');
        const usage = payload.usage && { inputTokens: payload.usage.prompt_tokens ?? 0, outputTokens: payload.usage.completion_tokens ?? 0 };
        const answer = {
          usage,
          ...(typeof payload.model === 'string' && { responseModel: payload.model }),
          ...(typeof payload.id === 'string' && { responseId: payload.id }),
          finishReasons: payload.choices!.flatMap((choice) => (typeof choice.finish_reason === 'string' ? [choice.finish_reason] : [])),
        };
        if (message.tool_calls?.length) {
          return {
            ...answer,
            toolCalls: message.tool_calls.map((call) => ({
              id: call.id,
              name: call.function.name,
              arguments: parseArguments(call.function.arguments),
            })),
          };
        }
        return { ...answer, toolCalls: [], final: parseContent(message.content ?? '') };
      },
    };
  }
}

interface CompletionResponse {
  id?: unknown;
  model?: unknown;
  choices?: Array<{ finish_reason?: unknown; message?: { content?: string | null; tool_calls?: Array<{ id: string; function: { name: string; arguments: string } }> } }>;
  usage?: { prompt_tokens?: number; completion_tokens?: number };
}

function toWire(message: ChatMessage) {
  if (message.role === 'tool') return { role: 'tool', tool_call_id: message.toolCallId, content: message.content };
  if (message.toolCalls?.length) {
    return {
      role: 'assistant',
      content: message.content || null,
      tool_calls: message.toolCalls.map((call) => ({
        id: call.id, type: 'function', function: { name: call.name, arguments: JSON.stringify(call.arguments ?? {}) },
      })),
    };
  }
  return { role: message.role, content: message.content };
}

function parseArguments(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new ModelError(`model sent tool arguments that are not JSON: ${text.slice(0, 200)}`, 'model_protocol');
  }
}

/** A model may answer JSON (structured output) or prose; keep structure when there is some. */
function parseContent(content: string): unknown {
  const trimmed = content.trim();
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    try {
      return JSON.parse(trimmed);
    } catch {
      // Not JSON after all: the prose is the answer.
    }
  }
  return content;
}
