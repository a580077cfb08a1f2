# config/initializers/litehammer_trace.rb -- litehammer trace: every SQL statement Active Record
# runs, as JSON lines for `litehammer import` (printed by `litehammer capture --snippet rails`;
# docs/capture.md). Output: $LITEHAMMER_TRACE (default log/litehammer-rails.jsonl), appended to
# by every process (puma workers included).
require "json"

module LitehammerTrace
  PATH = ENV.fetch("LITEHAMMER_TRACE") { File.join(Dir.pwd, "log", "litehammer-rails.jsonl") }
  LOCK = Mutex.new
  @out = nil
  @pid = nil
  @ids = 0
  @server_pid = nil
  # The program as started (puma retitles its workers "puma: cluster worker N: ..."): one
  # worker group for all of them.
  PROGRAM = File.basename(Process.argv0)

  def self.write(fields)
    line = fields.to_json << "\n"
    LOCK.synchronize do
      if @pid != Process.pid # first write, or a forked worker: a handle of its own
        @out = File.open(PATH, "a")
        @out.sync = true
        @pid = Process.pid
      end
      @out.write(line)
    end
  end

  def self.next_request
    LOCK.synchronize { "#{Process.pid}-#{@ids += 1}" }
  end

  def self.now
    Process.clock_gettime(Process::CLOCK_MONOTONIC, :nanosecond)
  end

  def self.cpu
    Process.clock_gettime(Process::CLOCK_THREAD_CPUTIME_ID, :nanosecond)
  end

  def self.tid
    t = Thread.current
    t.respond_to?(:native_thread_id) ? t.native_thread_id : t.object_id
  end

  # A bound value as JSON: SQL values as they are, binary strings as {"$blob": hex}; any other
  # type is written with its class, and `litehammer import` stops there naming it.
  def self.value(v)
    case v
    when nil, true, false, Integer, Float then v
    when String
      v.encoding == Encoding::BINARY && !v.dup.force_encoding(Encoding::UTF_8).valid_encoding? ? { "$blob" => v.unpack1("H*") } : v
    else { "$type" => v.class.name, "value" => v.to_s }
    end
  end

  def self.common(payload, ts, cpu)
    { pid: Process.pid, tid: tid, ts_ns: ts, dur_ns: now - ts, cpu_ns: cpu, cpu_end_ns: self.cpu,
      request: Thread.current[:litehammer_request], connection_id: payload[:connection]&.object_id,
      program: PROGRAM }
  end

  # start/finish listeners run in the thread that runs the statement: the clocks are its own.
  class Timed
    def start(_name, _id, _payload)
      (Thread.current[:litehammer_stack] ||= []) << [LitehammerTrace.now, LitehammerTrace.cpu]
    end
  end

  class Sql < Timed
    def finish(_name, _id, payload)
      ts, cpu = Thread.current[:litehammer_stack].pop
      binds = payload[:type_casted_binds]
      binds = binds.call if binds.respond_to?(:call)
      LitehammerTrace.write(LitehammerTrace.common(payload, ts, cpu).merge(
        event: "sql.active_record", name: payload[:name], sql: payload[:sql],
        type_casted_binds: Array(binds).map { |v| LitehammerTrace.value(v) },
        cached: payload[:cached] ? true : false, row_count: payload[:row_count]))
    end
  end

  class Transaction < Timed # Rails 7.1+
    def finish(_name, _id, payload)
      ts, cpu = Thread.current[:litehammer_stack].pop
      LitehammerTrace.write(LitehammerTrace.common(payload, ts, cpu).merge(
        event: "transaction.active_record", outcome: payload[:outcome].to_s))
    end
  end

  # The Rack server (puma …), once per process: how it serves keep-alive connections is not in
  # the SQL, and import models it from this.
  def self.server(payload)
    return if @server_pid == Process.pid
    @server_pid = Process.pid
    headers = payload[:headers]
    env = headers.respond_to?(:env) ? headers.env : {}
    write(event: "server.rack", pid: Process.pid, tid: tid, software: env["SERVER_SOFTWARE"].to_s,
          multithread: env["rack.multithread"] ? true : false, program: PROGRAM)
  end

  class Request # a request id for the statements of one controller action
    def start(_name, _id, payload)
      LitehammerTrace.server(payload)
      Thread.current[:litehammer_request] = LitehammerTrace.next_request
    end

    def finish(_name, _id, _payload)
      Thread.current[:litehammer_request] = nil
    end
  end
end

ActiveSupport::Notifications.subscribe("sql.active_record", LitehammerTrace::Sql.new)
if ActiveRecord.gem_version >= Gem::Version.new("7.1")
  ActiveSupport::Notifications.subscribe("transaction.active_record", LitehammerTrace::Transaction.new)
end
ActiveSupport::Notifications.subscribe("process_action.action_controller", LitehammerTrace::Request.new)
