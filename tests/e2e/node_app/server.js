// A small shop: GET or POST /page?bytes=N answers N bytes with a Content-Length header. Prints
// {"port": ...} once listening; on SIGTERM stops, flushes the spans and exits 0.
'use strict';

const { shutdown } = require('./tracing');
const http = require('http');

const server = http.createServer((req, res) => {
  req.resume(); // read (and drop) the request body
  req.on('end', () => {
    const url = new URL(req.url, 'http://localhost');
    const size = Math.max(0, Math.min(Number(url.searchParams.get('bytes')) || 0, 10_000_000));
    res.statusCode = 200;
    res.setHeader('Content-Type', 'text/plain');
    res.setHeader('Content-Length', size); // captured as http.response.header.content-length
    res.end(Buffer.alloc(size, 'x'));
  });
});

server.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n');
});

process.on('SIGTERM', () => {
  server.close(async () => {
    await shutdown();
    process.exit(0);
  });
  server.closeAllConnections();
});
