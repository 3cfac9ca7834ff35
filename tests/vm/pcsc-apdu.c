/* pcsc-apdu — the harness's PC/SC client: connects to the first reader (or the one whose
 * name contains -r TEXT), prints the ATR and the response to every APDU of the script.
 *   pcsc-apdu [-r TEXT] [-w SECONDS] [-n ROUNDS] [-q] [-h FILE] APDU-HEX...
 * Output (stable, parsed by the tests):
 *   reader: NAME
 *   protocol: T=0|T=1
 *   atr: 3B...
 *   > 00A4000C023F00
 *   < 9000
 * -w waits up to SECONDS for a card; -n runs the script ROUNDS times and then prints
 * "median_us: N" per APDU round trip (responses of round 1 only; -q prints none).
 * -h holds an SCardBeginTransaction around everything: after the script it prints
 * "holding: FILE", waits (up to 120 s) until FILE exists, sends the script again
 * (printed "again> " / "again< ") and prints "transaction: ended" once
 * SCardEndTransaction succeeds.
 * Exit status: 0 ok, 1 PC/SC error (message on stderr), 2 usage. */
#include <PCSC/winscard.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int fail(const char *what, LONG rv) {
    fprintf(stderr, "pcsc-apdu: %s: %s (0x%08lX)\n", what, pcsc_stringify_error(rv), (unsigned long)rv);
    return 1;
}

static int parse_hex(const char *text, BYTE *out, size_t cap) {
    size_t n = 0;
    for (const char *p = text; *p;) {
        if (*p == ' ' || *p == ':') { p++; continue; }
        unsigned v;
        if (n >= cap || sscanf(p, "%2x", &v) != 1 || !p[1]) return -1;
        out[n++] = (BYTE)v;
        p += 2;
    }
    return (int)n;
}

static void print_hex(const char *prefix, const BYTE *b, DWORD n) {
    printf("%s", prefix);
    for (DWORD i = 0; i < n; i++) printf("%02X", b[i]);
    printf("\n");
}

static int cmp_long(const void *a, const void *b) {
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    const char *want = NULL, *hold = NULL;
    int wait_s = 0, rounds = 1, quiet = 0, opt;
    while ((opt = getopt(argc, argv, "r:w:n:qh:")) != -1) {
        switch (opt) {
        case 'r': want = optarg; break;
        case 'w': wait_s = atoi(optarg); break;
        case 'n': rounds = atoi(optarg); break;
        case 'q': quiet = 1; break;
        case 'h': hold = optarg; break;
        default: fprintf(stderr, "usage: pcsc-apdu [-r TEXT] [-w S] [-n N] [-q] [-h FILE] APDU...\n"); return 2;
        }
    }
    if (rounds < 1) rounds = 1;
    SCARDCONTEXT ctx;
    LONG rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx);
    if (rv != SCARD_S_SUCCESS) return fail("SCardEstablishContext", rv);
    char readers[4096];
    DWORD len = sizeof readers;
    rv = SCardListReaders(ctx, NULL, readers, &len);
    if (rv != SCARD_S_SUCCESS) return fail("SCardListReaders", rv);
    const char *reader = NULL;
    for (const char *r = readers; *r; r += strlen(r) + 1)
        if (!want || strstr(r, want)) { reader = r; break; }
    if (!reader) { fprintf(stderr, "pcsc-apdu: no reader matches\n"); return 1; }
    printf("reader: %s\n", reader);
    if (wait_s > 0) {
        SCARD_READERSTATE st = { .szReader = reader, .dwCurrentState = SCARD_STATE_UNAWARE };
        time_t end = time(NULL) + wait_s;
        for (;;) {
            rv = SCardGetStatusChange(ctx, 500, &st, 1);
            if (rv == SCARD_S_SUCCESS && (st.dwEventState & SCARD_STATE_PRESENT)) break;
            if (rv != SCARD_S_SUCCESS && rv != SCARD_E_TIMEOUT) return fail("SCardGetStatusChange", rv);
            st.dwCurrentState = st.dwEventState & ~SCARD_STATE_CHANGED;
            if (time(NULL) >= end) { fprintf(stderr, "pcsc-apdu: no card after %d s\n", wait_s); return 1; }
        }
    }
    SCARDHANDLE card;
    DWORD proto;
    rv = SCardConnect(ctx, reader, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1, &card, &proto);
    if (rv != SCARD_S_SUCCESS) return fail("SCardConnect", rv);
    printf("protocol: T=%d\n", proto == SCARD_PROTOCOL_T1 ? 1 : 0);
    BYTE atr[MAX_ATR_SIZE];
    DWORD atr_len = sizeof atr, state, rlen = sizeof readers;
    char name[4096];
    rv = SCardStatus(card, name, &rlen, &state, &proto, atr, &atr_len);
    if (rv != SCARD_S_SUCCESS) return fail("SCardStatus", rv);
    print_hex("atr: ", atr, atr_len);
    const SCARD_IO_REQUEST *pci = proto == SCARD_PROTOCOL_T1 ? SCARD_PCI_T1 : SCARD_PCI_T0;
    if (hold) {
        rv = SCardBeginTransaction(card);
        if (rv != SCARD_S_SUCCESS) return fail("SCardBeginTransaction", rv);
        printf("transaction: begun\n");
    }
    int napdu = argc - optind;
    long *us = calloc((size_t)(napdu * rounds + 1), sizeof *us);
    int nus = 0;
    for (int round = 0; round < rounds; round++) {
        for (int i = optind; i < argc; i++) {
            BYTE cmd[65544], resp[65538];
            int n = parse_hex(argv[i], cmd, sizeof cmd);
            if (n < 4) { fprintf(stderr, "pcsc-apdu: bad APDU %s\n", argv[i]); return 2; }
            DWORD resp_len = sizeof resp;
            struct timespec t0, t1;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            rv = SCardTransmit(card, pci, cmd, (DWORD)n, NULL, resp, &resp_len);
            clock_gettime(CLOCK_MONOTONIC, &t1);
            if (rv != SCARD_S_SUCCESS) return fail("SCardTransmit", rv);
            us[nus++] = (t1.tv_sec - t0.tv_sec) * 1000000L + (t1.tv_nsec - t0.tv_nsec) / 1000;
            if (round == 0 && !quiet) { print_hex("> ", cmd, (DWORD)n); print_hex("< ", resp, resp_len); }
        }
    }
    if (rounds > 1 && nus > 0) {
        qsort(us, (size_t)nus, sizeof *us, cmp_long);
        printf("median_us: %ld\n", us[nus / 2]);
    }
    if (hold) {
        printf("holding: %s\n", hold);
        fflush(stdout);
        time_t end = time(NULL) + 120;
        while (access(hold, F_OK) != 0) {
            if (time(NULL) >= end) { fprintf(stderr, "pcsc-apdu: %s never appeared\n", hold); return 1; }
            usleep(100000);
        }
        for (int i = optind; i < argc; i++) {
            BYTE cmd[65544], resp[65538];
            int n = parse_hex(argv[i], cmd, sizeof cmd);
            DWORD resp_len = sizeof resp;
            rv = SCardTransmit(card, pci, cmd, (DWORD)n, NULL, resp, &resp_len);
            if (rv != SCARD_S_SUCCESS) return fail("SCardTransmit (held)", rv);
            print_hex("again> ", cmd, (DWORD)n);
            print_hex("again< ", resp, resp_len);
        }
        rv = SCardEndTransaction(card, SCARD_LEAVE_CARD);
        if (rv != SCARD_S_SUCCESS) return fail("SCardEndTransaction", rv);
        printf("transaction: ended\n");
    }
    fflush(stdout);
    SCardDisconnect(card, SCARD_LEAVE_CARD);
    SCardReleaseContext(ctx);
    return 0;
}
