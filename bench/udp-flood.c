/* Loopback UDP flood for bench/drops-flood.sh: sends 1-byte datagrams to 127.0.0.1:PORT
 * (a port nobody listens on, so each one is a NO_SOCKET drop) with sendmmsg, for SECONDS,
 * at up to RATE datagrams/s (0 = as fast as possible). Prints what it sent.
 * Only ever sends to loopback. Built by the script (gcc -O2), not part of the package. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: udp-flood PORT SECONDS [RATE]\n"); return 2; }
    int port = atoi(argv[1]);
    double seconds = atof(argv[2]);
    double rate = argc > 3 ? atof(argv[3]) : 0;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) { perror("socket"); return 1; }
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(port) };
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    enum { BATCH = 64 };
    char byte = 'x';
    struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
    struct mmsghdr msgs[BATCH];
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < BATCH; i++) {
        msgs[i].msg_hdr.msg_name = &to;
        msgs[i].msg_hdr.msg_namelen = sizeof to;
        msgs[i].msg_hdr.msg_iov = &iov;
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    unsigned long long sent = 0;
    double start = now(), end = start + seconds, t;
    while ((t = now()) < end) {
        if (rate > 0 && sent >= (t - start) * rate) { usleep(200); continue; }
        int n = sendmmsg(fd, msgs, BATCH, 0);
        if (n > 0) sent += n;
    }
    double took = now() - start;
    printf("sent %llu datagrams in %.2f s = %.0f/s\n", sent, took, sent / took);
    return 0;
}
