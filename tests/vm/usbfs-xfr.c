/* usbfs-xfr — the latency floor of the VM benchmark: CCID XfrBlock round trips straight
 * through Linux usbfs ioctls, nothing else (no library, no protocol engine, no
 * GetSlotStatus, no interrupt endpoint).
 *   usbfs-xfr DEVNODE IFACE EP_OUT EP_IN N APDU-HEX [IN-LENGTH]
 * e.g. usbfs-xfr /dev/bus/usb/001/002 0 0x03 0x82 200 0084000008
 * Each bulk-IN asks for IN-LENGTH bytes (default: a whole 65554-byte CCID message, as
 * libccid does; the kernel allocates a buffer that size for every synchronous transfer,
 * so a short IN-LENGTH shows what that allocation costs).
 * Claims the interface, powers the card (PC_to_RDR_IccPowerOn, CCID §6.1.1), then sends
 * the APDU N times as PC_to_RDR_XfrBlock (§6.1.4) and reads each RDR_to_PC_DataBlock
 * (§6.2.1), re-reading while the reader asks for time extension (bmCommandStatus 2).
 * Output (parsed by tests/vm_bench.rs):
 *   atr: 3B...
 *   response: <first response, hex>
 *   median_us: N
 * Exit status: 0 ok, 1 USB or CCID error (message on stderr), 2 usage. */
#include <errno.h>
#include <fcntl.h>
#include <linux/usbdevice_fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define HEADER 10
#define BUFFER (HEADER + 65544)

static int fd;
static unsigned ep_out, ep_in;
static unsigned char seq;
static unsigned in_length = BUFFER;

static int die(const char *what) {
    fprintf(stderr, "usbfs-xfr: %s: %s\n", what, strerror(errno));
    return 1;
}

static int bulk(unsigned ep, unsigned char *data, unsigned len) {
    struct usbdevfs_bulktransfer t = { .ep = ep, .len = len, .timeout = 5000, .data = data };
    return ioctl(fd, USBDEVFS_BULK, &t);
}

/* Sends a command with `len` data bytes, reads the answer into `in`; returns the
 * answer's dwLength, or -1. */
static int exchange(unsigned char type, const unsigned char *data, unsigned len, unsigned char *in) {
    static unsigned char out[BUFFER];
    memset(out, 0, HEADER);
    out[0] = type;
    out[1] = len & 0xFF; out[2] = (len >> 8) & 0xFF; out[3] = (len >> 16) & 0xFF; out[4] = len >> 24;
    out[6] = ++seq;
    if (len) memcpy(out + HEADER, data, len);
    if (bulk(ep_out, out, HEADER + len) < 0) return die("bulk out"), -1;
    for (;;) {
        int n = bulk(ep_in, in, in_length);
        if (n < 0) return die("bulk in"), -1;
        if (n < HEADER || in[6] != seq) { fprintf(stderr, "usbfs-xfr: bad answer (%d bytes)\n", n); return -1; }
        if ((in[7] >> 6) == 2) continue; /* time extension */
        if ((in[7] >> 6) != 0) { fprintf(stderr, "usbfs-xfr: command failed, bError %02X\n", in[8]); return -1; }
        unsigned dw = in[1] | in[2] << 8 | in[3] << 16 | (unsigned)in[4] << 24;
        if (dw > (unsigned)n - HEADER) { fprintf(stderr, "usbfs-xfr: short answer\n"); return -1; }
        return (int)dw;
    }
}

static void print_hex(const char *prefix, const unsigned char *b, int n) {
    printf("%s", prefix);
    for (int i = 0; i < n; i++) printf("%02X", b[i]);
    printf("\n");
}

static int cmp_long(const void *a, const void *b) {
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc != 7 && argc != 8) { fprintf(stderr, "usage: usbfs-xfr DEVNODE IFACE EP_OUT EP_IN N APDU-HEX [IN-LENGTH]\n"); return 2; }
    if (argc == 8) in_length = (unsigned)strtoul(argv[7], NULL, 0);
    if (in_length < HEADER || in_length > BUFFER) { fprintf(stderr, "usbfs-xfr: bad IN-LENGTH\n"); return 2; }
    unsigned iface = (unsigned)strtoul(argv[2], NULL, 0);
    ep_out = (unsigned)strtoul(argv[3], NULL, 0);
    ep_in = (unsigned)strtoul(argv[4], NULL, 0);
    int rounds = atoi(argv[5]);
    unsigned char apdu[261];
    unsigned apdu_len = 0;
    for (const char *p = argv[6]; p[0] && p[1] && apdu_len < sizeof apdu; p += 2) {
        unsigned v;
        if (sscanf(p, "%2x", &v) != 1) { fprintf(stderr, "usbfs-xfr: bad hex\n"); return 2; }
        apdu[apdu_len++] = (unsigned char)v;
    }
    if (rounds < 1 || apdu_len < 4) { fprintf(stderr, "usbfs-xfr: bad N or APDU\n"); return 2; }
    fd = open(argv[1], O_RDWR);
    if (fd < 0) return die(argv[1]);
    if (ioctl(fd, USBDEVFS_CLAIMINTERFACE, &iface) < 0) return die("claim interface");
    static unsigned char in[BUFFER];
    int n = exchange(0x62, NULL, 0, in); /* IccPowerOn, bPowerSelect 0 = automatic */
    if (n < 0) return 1;
    print_hex("atr: ", in + HEADER, n);
    long *us = calloc((size_t)rounds, sizeof *us);
    for (int i = 0; i < rounds; i++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        n = exchange(0x6F, apdu, apdu_len, in);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (n < 0) return 1;
        if (i == 0) print_hex("response: ", in + HEADER, n);
        us[i] = (t1.tv_sec - t0.tv_sec) * 1000000L + (t1.tv_nsec - t0.tv_nsec) / 1000;
    }
    qsort(us, (size_t)rounds, sizeof *us, cmp_long);
    printf("median_us: %ld\n", us[rounds / 2]);
    ioctl(fd, USBDEVFS_RELEASEINTERFACE, &iface);
    close(fd);
    return 0;
}
