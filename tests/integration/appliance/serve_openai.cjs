// tests/integration/appliance/serve_openai.cjs: the official `openai` npm
// client against strongroomd over real TLS with an app's API key: models
// list, chat (whole and streamed with include_usage), completions, the
// error statuses, 64 concurrent streams each equal to its solo greedy
// output, and streams abandoned after their first chunk. Expectations
// come from the engine alone (sr-generate), never from this file.
// Prints TAP lines; run by test_serve.sh, which sets:
//   SR_OPENAI_MODULE  build/node_modules/openai
//   SR_URL, SR_KEY    the daemon and the app key
//   SR_EXPECT         JSON: {chat, comp, many[64]} from sr-generate
//   NODE_EXTRA_CA_CERTS  the daemon's certificate
'use strict';
const path = require('path');
const fs = require('fs');
const mod = require(path.resolve(process.env.SR_OPENAI_MODULE));
const OpenAI = mod.OpenAI || mod.default || mod;
const exp = JSON.parse(fs.readFileSync(process.env.SR_EXPECT, 'utf8'));

let n = 0;
let failed = 0;
function ok(cond, what) {
	n++;
	if (!cond)
		failed++;
	console.log(`${cond ? 'ok' : 'not ok'} ${n} - openai client: ${what}`);
}
// The R1 split drops "</think>" itself; everything else is kept.
const joined = (t) => t.replace('</think>', '');
const client = new OpenAI({ apiKey: process.env.SR_KEY,
	baseURL: process.env.SR_URL + '/v1', maxRetries: 0 });

async function status(fn) {
	try {
		await fn();
		return 200;
	} catch (e) {
		return e.status;
	}
}

async function streamed(params) {
	const s = await client.chat.completions.create(
	    Object.assign({ stream: true }, params));
	let text = '', usage = null, finish = null, chunks = 0;
	for await (const ch of s) {
		chunks++;
		if (ch.usage)
			usage = ch.usage;
		for (const c of ch.choices) {
			const d = c.delta || {};
			text += (d.reasoning_content || '') + (d.content || '');
			if (c.finish_reason)
				finish = c.finish_reason;
		}
	}
	return { text, usage, finish, chunks };
}

async function completionStream(e) {
	const s = await client.completions.create({ model: 'tiny-qwen2',
		prompt: e.input, max_tokens: e.max_tokens, temperature: 0,
		stream: true });
	let text = '';
	for await (const ch of s)
		for (const c of ch.choices)
			text += c.text || '';
	return { text };
}

async function main() {
	const models = await client.models.list();
	ok(models.data.some((m) => m.id === 'tiny-qwen2'),
	    'models.list names tiny-qwen2');

	const chat = { model: 'tiny-qwen2', temperature: 0,
		messages: [{ role: 'user', content: exp.chat.input }],
		max_tokens: exp.chat.max_tokens };
	const c = await client.chat.completions.create(chat);
	const m = c.choices[0].message;
	ok((m.reasoning_content || '') + (m.content || '') ===
	    joined(exp.chat.text),
	    'chat: the answer is the engine\'s greedy output');
	ok(c.usage.prompt_tokens === exp.chat.prompt_tokens &&
	    c.usage.completion_tokens === exp.chat.completion_tokens,
	    'chat: usage counts the same prompt and output tokens');
	ok(c.choices[0].finish_reason === exp.chat.finish &&
	    c.object === 'chat.completion', 'chat: finish_reason and object');

	const s = await streamed(Object.assign(
	    { stream_options: { include_usage: true } }, chat));
	ok(s.text === joined(exp.chat.text) && s.chunks > 2,
	    'chat stream: the deltas add up to the greedy output');
	ok(s.usage && s.usage.completion_tokens === exp.chat.completion_tokens &&
	    s.finish === exp.chat.finish,
	    'chat stream: include_usage adds the usage chunk; finish_reason');

	const cp = await client.completions.create({ model: 'tiny-qwen2',
		prompt: exp.comp.input, max_tokens: exp.comp.max_tokens,
		temperature: 0 });
	ok(cp.choices[0].text === exp.comp.text &&
	    cp.usage.completion_tokens === exp.comp.completion_tokens,
	    'completions: the engine\'s greedy text and usage');

	ok(await status(() => client.chat.completions.create(
	    Object.assign({}, chat, { temperature: 5 }))) === 400,
	    'temperature 5: 400');
	ok(await status(() => client.chat.completions.create(
	    Object.assign({}, chat, { n: 2 }))) === 400, 'n=2: 400');
	ok(await status(() => client.chat.completions.create(
	    Object.assign({}, chat, { tools: [{ type: 'function',
		function: { name: 'f', parameters: {} } }] }))) === 400,
	    'tools: 400');
	ok(await status(() => client.chat.completions.create(
	    Object.assign({}, chat, { model: 'no-such-model' }))) === 404,
	    'unknown model: 404');
	const anon = new OpenAI({ apiKey: 'not-a-key',
		baseURL: process.env.SR_URL + '/v1', maxRetries: 0 });
	ok(await status(() => anon.models.list()) === 401, 'no valid key: 401');

	// 64 at once, each with its own prompt: batching changes nothing.
	const runs = exp.many.map((e) => e.chat
	    ? streamed({ model: 'tiny-qwen2', temperature: 0,
		    max_tokens: e.max_tokens,
		    messages: [{ role: 'user', content: e.input }] })
	    : completionStream(e));
	const got = await Promise.all(runs);
	const same = got.filter((g, i) =>
	    g.text === (exp.many[i].chat ? joined(exp.many[i].text)
	                                 : exp.many[i].text)).length;
	ok(same === exp.many.length && exp.many.length === 64,
	    `64 concurrent streams each equal their solo output (${same})`);

	// Streams abandoned after their first chunk.
	const gone = [];
	for (let i = 0; i < 12; i++)
		gone.push((async () => {
			const st = await client.chat.completions.create({
				model: 'tiny-qwen2', stream: true,
				temperature: 0.9, max_tokens: 400,
				messages: [{ role: 'user',
					content: `long answer ${i}` }] });
			for await (const ch of st) {
				void ch;
				break; /* closes the connection */
			}
		})());
	await Promise.all(gone);
}

main().then(() => process.exit(failed ? 1 : 0), (e) => {
	console.log(`not ok ${n + 1} - openai client: ${e}`);
	process.exit(1);
});
