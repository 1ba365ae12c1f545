// Render counters per component, so tests can prove that nothing re-renders that did not change
// (the cost-of-looking requirement). A Map increment per render is negligible.
const counts = new Map<string, number>();

export function countRender(component: string): void {
  counts.set(component, (counts.get(component) ?? 0) + 1);
}

export function renderCount(component: string): number {
  return counts.get(component) ?? 0;
}

export function resetRenderCounts(): void {
  counts.clear();
}
