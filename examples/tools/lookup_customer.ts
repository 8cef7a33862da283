// lookup_customer: finds a customer record by email or id in a small embedded dataset.
import { runTool, ToolFailure } from './lib/tool.ts';

interface Customer {
  id: string;
  name: string;
  email: string;
  plan: 'free' | 'pro' | 'enterprise';
  region: string;
  since: string;
  open_tickets: number;
  sla_hours: number;
}

const CUSTOMERS: readonly Customer[] = [
  { id: 'cus_1001', name: 'Ada Lovelace', email: 'ada@analytical.example', plan: 'enterprise', region: 'eu-west', since: '2021-03-14', open_tickets: 2, sla_hours: 4 },
  { id: 'cus_1002', name: 'Grace Hopper', email: 'grace@cobol.example', plan: 'pro', region: 'us-east', since: '2022-07-01', open_tickets: 0, sla_hours: 24 },
  { id: 'cus_1003', name: 'Alan Turing', email: 'alan@bletchley.example', plan: 'free', region: 'eu-west', since: '2023-01-20', open_tickets: 5, sla_hours: 72 },
  { id: 'cus_1004', name: 'Katherine Johnson', email: 'katherine@orbit.example', plan: 'enterprise', region: 'us-west', since: '2020-11-09', open_tickets: 1, sla_hours: 4 },
  { id: 'cus_1005', name: 'Edsger Dijkstra', email: 'edsger@shortest.example', plan: 'pro', region: 'eu-central', since: '2024-02-29', open_tickets: 3, sla_hours: 24 },
  { id: 'cus_1006', name: 'Barbara Liskov', email: 'barbara@substitution.example', plan: 'free', region: 'us-east', since: '2025-05-05', open_tickets: 0, sla_hours: 72 },
];

runTool((input) => {
  const email = typeof input.email === 'string' ? input.email.trim().toLowerCase() : undefined;
  const id = typeof input.customer_id === 'string' ? input.customer_id.trim() : undefined;
  if (!email && !id) throw new ToolFailure('BAD_INPUT', 'lookup_customer needs "email" or "customer_id"');
  const customer = CUSTOMERS.find((c) => (id !== undefined && c.id === id) || (email !== undefined && c.email === email));
  return { found: customer !== undefined, customer: customer ?? null };
});
