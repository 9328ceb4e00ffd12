#include <cstdio>
int main() { std::puts("slotguard-agent: not built yet"); return 1; }
