// Worker output as log events for the UI, at most `perSecond` lines a second: a 200 MB flood must
// not flood the UI (worker.log keeps everything).
export class LineThrottle {
  private partial = '';
  private windowStart = Date.now();
  private sent = 0;
  private dropped = 0;

  constructor(
    private readonly emitLine: (line: string) => void,
    private readonly perSecond = 100,
  ) {}

  push(chunk: Buffer): void {
    if (this.sent >= this.perSecond && Date.now() - this.windowStart < 1000) {
      // over budget: count lines cheaply without splitting strings
      for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) this.dropped++;
      this.partial = '';
      return;
    }
    const text = this.partial + chunk.toString('utf8');
    const parts = text.split('\n');
    this.partial = (parts.pop() ?? '').slice(-4096);
    for (const line of parts) this.line(line);
  }

  flush(): void {
    if (this.partial) this.line(this.partial);
    this.partial = '';
    if (this.dropped > 0) this.emitLine(`… ${this.dropped} lines not shown (see worker.log)`);
    this.dropped = 0;
  }

  private line(line: string): void {
    const t = Date.now();
    if (t - this.windowStart >= 1000) {
      if (this.dropped > 0) this.emitLine(`… ${this.dropped} lines not shown (see worker.log)`);
      this.windowStart = t;
      this.sent = 0;
      this.dropped = 0;
    }
    if (this.sent >= this.perSecond) {
      this.dropped++;
      return;
    }
    this.sent++;
    this.emitLine(line.slice(0, 1000));
  }
}
