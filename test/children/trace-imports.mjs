// Preloaded with --import: appends every package the process imports to $LENET5_TRACE_IMPORTS.
import { register } from 'node:module';

const hooks = `
import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  const match = /node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(result.url);
  if (match) appendFileSync(${JSON.stringify(process.env.LENET5_TRACE_IMPORTS)}, match[1] + '\\n');
  return result;
}`;
register(`data:text/javascript,${encodeURIComponent(hooks)}`);
