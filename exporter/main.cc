#include <cstdio>
int main() { std::puts("slotguard-exporter: not built yet"); return 1; }
