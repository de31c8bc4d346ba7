import NIOCore

/// Sits behind NIO's `AcceptBackoffHandler` on a listening channel. accept() failing with
/// EMFILE/ENFILE/ENOBUFS/ENOMEM is not fatal to a server socket (NIOPosix's ServerSocketChannel
/// fires it as an error and keeps the channel open), and with auto-read on the very next read
/// fails again at once: without a pause that is a 100 % CPU loop until a descriptor frees up.
/// The backoff handler holds the next read() for `nextPause()`; this handler makes the pause grow
/// while failures go on, resets it when an accept succeeds, and reports each pause.
final class NBDAcceptMonitor: ChannelInboundHandler {
    typealias InboundIn = Channel
    typealias InboundOut = Channel

    private let limits: NBDServerLimits
    private let observer: (any NBDServerObserver)?
    private var consecutive = 0
    private(set) var failures = 0

    init(limits: NBDServerLimits, observer: (any NBDServerObserver)?) {
        self.limits = limits
        self.observer = observer
    }

    /// The backoff for the current run of failures: `acceptBackoff`, doubled per failure, capped.
    func pause(for error: IOError) -> TimeAmount? {
        consecutive += 1
        failures += 1
        let shift = min(consecutive - 1, 20)
        let pause = min(limits.acceptBackoff.nanoseconds << shift, limits.maxAcceptBackoff.nanoseconds)
        let reason = "\(error)"
        observer?.acceptFailed(reason, pauseSeconds: Double(pause) / 1e9, failures: failures)
        return .nanoseconds(pause)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        consecutive = 0
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // accept() errors were answered by the backoff; a refused child's failed initializer
        // (NBDConnectionRefused) was already reported. Neither closes the listener.
        if error is IOError || error is NBDConnectionRefused { return }
        context.fireErrorCaught(error)
    }
}

/// A connection over `NBDServerLimits.maxConnections`, closed as soon as it was accepted.
struct NBDConnectionRefused: Error {}
