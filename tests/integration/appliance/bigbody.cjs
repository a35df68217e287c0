// tests/integration/appliance/bigbody.cjs: node's https client POSTs a body
// over max_body_bytes (argv[3] bytes) to https://localhost:argv[2]/argv[4]
// without Expect, as the openai npm client does, and prints the status it
// reads back, or the error it got instead ("error: ..."). Run by
// test_daemon.sh with NODE_EXTRA_CA_CERTS set to the daemon's certificate.
'use strict';
const https = require('https');
const [port, size, path] = [process.argv[2], +process.argv[3], process.argv[4]];
const req = https.request({ host: 'localhost', port, path, method: 'POST',
	headers: { 'Content-Type': 'application/json', 'Content-Length': size } },
(res) => {
	res.resume();
	res.on('end', () => console.log(res.statusCode));
});
req.on('error', (e) => console.log('error: ' + e.code));
req.end(Buffer.alloc(size, 'a'));
