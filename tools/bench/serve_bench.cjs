// tools/bench/serve_bench.cjs: the HTTPS side of the serving benchmark:
// streamed completions over TLS 1.3 with an API key, the same
// request mix as the in-process anchor (serve_bench.c), @p c requests in
// flight until the total is done. Prints one line per concurrency.
// Env: SR_URL, SR_KEY, NODE_EXTRA_CA_CERTS; args: max_tokens.
'use strict';
const https = require('https');
const agent = new https.Agent({ keepAlive: true, maxSockets: 64 });
const maxTokens = parseInt(process.argv[2] || '64', 10);
const url = new URL(process.env.SR_URL + '/v1/completions');

function one(seed) {
	return new Promise((resolve, reject) => {
		const t0 = process.hrtime.bigint();
		let ttft = 0n, tokens = 0, buf = '';
		const body = JSON.stringify({ prompt: 'Tell me about the keys ' +
			'the strongroom keeps.', max_tokens: maxTokens,
			temperature: 0.8, seed, stream: true,
			stream_options: { include_usage: true } });
		const req = https.request(url, { method: 'POST', agent,
			headers: { authorization: 'Bearer ' + process.env.SR_KEY,
				'content-type': 'application/json' } }, (res) => {
			if (res.statusCode !== 200)
				return reject(new Error('status ' + res.statusCode));
			res.setEncoding('utf8');
			res.on('data', (d) => {
				buf += d;
				let i;
				while ((i = buf.indexOf('\n\n')) >= 0) {
					const ev = buf.slice(0, i);
					buf = buf.slice(i + 2);
					if (ev.startsWith('data: {')) {
						const o = JSON.parse(ev.slice(6));
						// TTFT: the first event with text
						if (ttft === 0n && o.choices.length &&
						    o.choices[0].text)
							ttft = process.hrtime.bigint() - t0;
						if (o.usage)
							tokens = o.usage.completion_tokens;
					}
				}
			});
			res.on('end', () => resolve({ ttft, tokens }));
		});
		req.on('error', reject);
		req.end(body);
	});
}

async function run(c, total) {
	let started = 0, tokens = 0;
	const ttfts = [];
	const t0 = process.hrtime.bigint();
	async function worker() {
		while (started < total) {
			const r = await one(started++);
			tokens += r.tokens;
			ttfts.push(Number(r.ttft) / 1e6);
		}
	}
	await Promise.all(Array.from({ length: c }, worker));
	const secs = Number(process.hrtime.bigint() - t0) / 1e9;
	ttfts.sort((a, b) => a - b);
	const p = (q) => ttfts[Math.min(ttfts.length - 1,
	    Math.floor(ttfts.length * q))];
	console.log(`https   c=${String(c).padEnd(3)} ${String(total).padStart(4)}` +
	    ` req  ${(total / secs).toFixed(1).padStart(8)} req/s  ` +
	    `${(tokens / secs).toFixed(1).padStart(9)} tok/s  TTFT p50 ` +
	    `${p(0.5).toFixed(1).padStart(7)} ms  p99 ${p(0.99).toFixed(1).padStart(7)} ms`);
}

(async () => {
	for (const c of [1, 8, 32])
		await run(c, c < 4 ? 16 : c * 4);
	process.exit(0);
})().catch((e) => { console.error('serve_bench: ' + e); process.exit(1); });
