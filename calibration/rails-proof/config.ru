# The Rails proof app (#30, docs/capture.md "Proofs of the framework routes"): the Rails 6.1
# blog of calibration/rails/config.ru (Debian's ruby-rails, puma, ruby-sqlite3 1.4, which links
# the system libsqlite3), with the journal mode and synchronous from the environment and, with
# TRACE=1, litehammer's Rails initializer (snippets/trace/rails_initializer.rb, as `litehammer
# capture --snippet rails` prints it) loaded. Served by calibration/rails-proof/proof.
#
# Environment: DB (the SQLite file), JOURNAL (wal), SYNC (normal), TRACE (1: the initializer,
# writing $LITEHAMMER_TRACE), BUSY = "timeout" (the gem's C busy_timeout, which
# holds the GVL while it waits, as Rails <= 7.0) or "handler" (a Ruby busy_handler that
# sleeps 1 ms per retry and releases the GVL, as Rails 7.1+'s busy_handler_timeout),
# BUSY_TIMEOUT_MS (5000), POOL (connections: Puma's threads).
#
# GET  /posts/:id          post + 10 latest comments, views bumped (update_counters: autocommit)
# POST /posts/:id/comments the post, then the comment in BEGIN IMMEDIATE ... COMMIT; 201 {"id": N}
# GET  /posts/:id/comments/new   the same (oha sends one method)
# Errors answer 503 with X-Db-Error (busy, locked, other).
require "rails"
require "active_record/railtie"
require "action_controller/railtie"
require "json"

class CalibApp < Rails::Application
  config.eager_load = true
  config.cache_classes = true
  config.consider_all_requests_local = false
  config.secret_key_base = "calibration" * 8
  config.logger = Logger.new(nil)
  config.log_level = :warn
  config.hosts.clear
  config.api_only = true
end

BUSY = ENV.fetch("BUSY", "timeout")
BUSY_TIMEOUT_MS = Integer(ENV.fetch("BUSY_TIMEOUT_MS", "5000"))

# Every connection: $JOURNAL + $SYNC, and the busy handler the configuration asks for.
module CalibConnection
  def configure_connection
    super
    @connection.execute("PRAGMA journal_mode = #{ENV.fetch('JOURNAL', 'wal')}")
    @connection.execute("PRAGMA synchronous = #{ENV.fetch('SYNC', 'normal')}")
    if BUSY == "handler"
      timeout = BUSY_TIMEOUT_MS / 1000.0
      @connection.busy_handler do |count|
        now = Process.clock_gettime(Process::CLOCK_MONOTONIC)
        if count.zero?
          @calib_deadline = now + timeout
          true
        elsif now > @calib_deadline
          false
        else
          sleep(0.001)
          true
        end
      end
    else
      @connection.busy_timeout(BUSY_TIMEOUT_MS)
    end
  end
end
require "active_record/connection_adapters/sqlite3_adapter"
ActiveRecord::ConnectionAdapters::SQLite3Adapter.prepend(CalibConnection)

require File.expand_path("../../snippets/trace/rails_initializer.rb", __dir__) if ENV["TRACE"] == "1"

class Post < ActiveRecord::Base
  has_many :comments
end

class Comment < ActiveRecord::Base
  belongs_to :post
end

class PostsController < ActionController::API
  rescue_from ActiveRecord::StatementInvalid do |e|
    kind = case e.message
           when /database is locked/ then "locked"
           when /busy/i then "busy"
           else "other"
           end
    response.headers["X-Db-Error"] = kind
    render json: { error: e.message }, status: 503
  end

  def show
    post = Post.find(params[:id])
    comments = post.comments.order(id: :desc).limit(10).to_a
    Post.update_counters(post.id, views: 1)
    render json: { id: post.id, title: post.title, views: post.views + 1,
                   comments: comments.map { |c| { id: c.id, body: c.body } } }
  end

  def comment
    post = Post.find(params[:id])
    conn = Comment.connection
    now = Time.now.utc
    id = nil
    conn.execute("BEGIN IMMEDIATE")
    begin
      id = conn.insert("INSERT INTO comments (post_id, body, created_at, updated_at) VALUES (?, ?, ?, ?)",
                       "comment", nil, nil, nil,
                       [ActiveRecord::Relation::QueryAttribute.new("post_id", post.id, ActiveModel::Type::Integer.new),
                        ActiveRecord::Relation::QueryAttribute.new("body", "calibration comment #{rand(1_000_000)}", ActiveModel::Type::String.new),
                        ActiveRecord::Relation::QueryAttribute.new("created_at", now, ActiveModel::Type::DateTime.new),
                        ActiveRecord::Relation::QueryAttribute.new("updated_at", now, ActiveModel::Type::DateTime.new)])
      conn.execute("COMMIT")
    rescue StandardError
      conn.execute("ROLLBACK") rescue nil
      raise
    end
    render json: { id: id }, status: 201
  end
end

# No config/database.yml: the connection comes from DATABASE_URL.
ENV["DATABASE_URL"] = "sqlite3:#{ENV.fetch('DB')}?pool=#{Integer(ENV.fetch('POOL', '5'))}&timeout=#{BUSY_TIMEOUT_MS}"
CalibApp.initialize!
CalibApp.routes.draw do
  get "/posts/:id" => "posts#show"
  post "/posts/:id/comments" => "posts#comment"
  # The same comment post as a GET, for load generators that send one method (oha --urls-from-file).
  get "/posts/:id/comments/new" => "posts#comment"
end
run CalibApp
