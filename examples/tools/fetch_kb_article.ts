// fetch_kb_article: searches a small embedded knowledge base and returns the best-matching articles.
import { runTool, ToolFailure } from './lib/tool.ts';

interface Article {
  id: string;
  title: string;
  tags: readonly string[];
  summary: string;
}

const ARTICLES: readonly Article[] = [
  { id: 'kb-101', title: 'Resetting your password', tags: ['login', 'password', 'account', 'reset'], summary: 'Use "Forgot password" on the sign-in page; links expire after 30 minutes.' },
  { id: 'kb-102', title: 'Two-factor authentication lockout', tags: ['login', '2fa', 'mfa', 'locked', 'account'], summary: 'Recovery codes restore access; support can reset 2FA after identity checks.' },
  { id: 'kb-201', title: 'Understanding your invoice', tags: ['billing', 'invoice', 'charge', 'payment'], summary: 'Invoices list seats, usage and proration; download them from Settings > Billing.' },
  { id: 'kb-202', title: 'Requesting a refund', tags: ['billing', 'refund', 'charge', 'cancel'], summary: 'Refunds within 14 days of a charge go back to the original payment method.' },
  { id: 'kb-301', title: 'API rate limits and 429 errors', tags: ['api', 'rate', 'limit', '429', 'error'], summary: 'Back off using the Retry-After header; enterprise plans have higher limits.' },
  { id: 'kb-302', title: 'Webhook deliveries failing', tags: ['api', 'webhook', 'delivery', 'timeout', 'error'], summary: 'Endpoints must answer 2xx within 10 s; failed deliveries retry for 24 h.' },
  { id: 'kb-401', title: 'Exporting your data', tags: ['data', 'export', 'csv', 'gdpr'], summary: 'Exports run in the background and are emailed as a CSV link valid for 7 days.' },
];

const STOPWORDS = new Set(['the', 'and', 'for', 'with', 'my', 'is', 'it', 'to', 'of', 'on', 'in', 'a', 'an', 'can', 'not', 'how', 'do', 'i']);

runTool((input) => {
  const query = typeof input.query === 'string' ? input.query : '';
  if (!query.trim()) throw new ToolFailure('BAD_INPUT', 'fetch_kb_article needs a non-empty "query"');
  const limit = typeof input.limit === 'number' && input.limit > 0 ? Math.min(Math.floor(input.limit), 5) : 3;
  const words = query.toLowerCase().split(/[^a-z0-9]+/).filter((word) => word.length > 1 && !STOPWORDS.has(word));
  const scored = ARTICLES.map((article) => {
    const haystack = `${article.title} ${article.summary}`.toLowerCase();
    let score = 0;
    for (const word of words) {
      if (article.tags.includes(word)) score += 2;
      else if (haystack.includes(word)) score += 1;
    }
    return { article, score };
  })
    .filter((entry) => entry.score > 0)
    .sort((a, b) => b.score - a.score || a.article.id.localeCompare(b.article.id))
    .slice(0, limit);
  return {
    query,
    articles: scored.map(({ article, score }) => ({
      id: article.id, title: article.title, summary: article.summary, score, url: `https://help.switchyard.example/articles/${article.id}`,
    })),
  };
});
