/*
 * TEST-ONLY stand-in for Windows' bcryptprimitives.dll, for running the
 * cross-built idrecon.exe under Wine 8 (which lacks it). NEVER SHIP THIS.
 *
 * Rust's standard library (>= 1.78) imports ProcessPrng from
 * bcryptprimitives.dll; real Windows 10/11 and Server 2016+ have it, Wine 8
 * does not, so every Rust binary fails to load there (status c0000135).
 * This DLL exports ProcessPrng and fills the buffer from RtlGenRandom
 * (advapi32's SystemFunction036). scripts/windows-check.sh builds it into a
 * temporary directory next to the .exe it tests; it never goes into
 * target/ release output or any package. See docs/windows.md.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk)) {
            return FALSE;
        }
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
