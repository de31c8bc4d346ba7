import NIOCore

/// Pauses a listening channel's accepts after accept() fails (EMFILE, ENFILE, ENOBUFS, ENOMEM).
///
/// Those errors are not fatal to a server socket (NIOPosix's `ServerSocketChannel.
/// shouldCloseOnReadError`): the channel fires the error and stays open, with the connection
/// still in the kernel's backlog, so the level-triggered epoll reports it readable again at once.
/// NIO's `AcceptBackoffHandler` cannot break that loop with `ServerBootstrap.bind`: it delays the
/// next `read()`, but after a failed accept `BaseSocketChannel` keeps `readPending` set and stays
/// registered for readability, asks for no new read, and calls accept again on the next wake-up
/// (measured: 100 000 failed accept4 calls in 4 s, a full core). Turning auto-read off does
/// unregister the socket from epoll (`pauseRead0`); turning it back on after the pause reads again.
/// The pause starts at `acceptBackoff`, doubles while accepts keep failing, and is reported each time.
final class NBDAcceptMonitor: ChannelInboundHandler {
    typealias InboundIn = Channel
    typealias InboundOut = Channel

    private let limits: NBDServerLimits
    private let observer: (any NBDServerObserver)?
    private var consecutive = 0
    private var failures = 0
    private var resume: Scheduled<Void>?

    init(limits: NBDServerLimits, observer: (any NBDServerObserver)?) {
        self.limits = limits
        self.observer = observer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        consecutive = 0
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let error = error as? IOError {
            pauseAccepting(context, error)
            return
        }
        // A refused child's failed initializer was already reported; it does not close the listener.
        if error is NBDConnectionRefused { return }
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        resume?.cancel()
        resume = nil
        context.fireChannelInactive()
    }

    private func pauseAccepting(_ context: ChannelHandlerContext, _ error: IOError) {
        guard resume == nil else { return }
        consecutive += 1
        failures += 1
        let shift = min(consecutive - 1, 20)
        let pause = min(limits.acceptBackoff.nanoseconds << shift, limits.maxAcceptBackoff.nanoseconds)
        observer?.acceptFailed("\(error)", pauseSeconds: Double(pause) / 1e9, failures: failures)
        try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: false)
        resume = context.eventLoop.scheduleTask(in: .nanoseconds(pause)) { [self] in
            resume = nil
            guard context.channel.isActive else { return }
            try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
        }
    }
}

/// A connection over `NBDServerLimits.maxConnections`, closed as soon as it was accepted.
struct NBDConnectionRefused: Error {}
