# Evaluates vagrant/Vagrantfile against a stand-in for Vagrant's config
# object and checks what `vagrant validate` does not, because it is this
# lab's design rather than Vagrant's rules: the machines for 1 and 3 agents,
# one distinct private address each, both providers configured, every agent
# fetching a join token before it comes up and pointed at the control plane,
# and the demo run (an inline command, whose script validate never sees) on
# the last agent. Option names, provisioner and trigger script paths are
# `vagrant validate`'s job (tests/tests/vagrant_lab.rs runs both).
# Usage: ruby vagrant/check-vagrantfile.rb   (exit 0 when fine)

# Records every call; a call with a block hands the block a fresh recorder.
class Recorder
  attr_reader :calls

  def initialize
    @calls = []
    @children = {}
  end

  def method_missing(name, *args, **kw, &blk)
    return (@children[name] ||= Recorder.new) if args.empty? && kw.empty? && blk.nil? && !name.end_with?("=")

    child = blk && Recorder.new
    @calls << [name, args, kw, child]
    blk&.call(child)
    self
  end

  def respond_to_missing?(*)
    true
  end

  def find(name)
    @calls.select { |c| c[0] == name }
  end
end

module Vagrant
  def self.configure(version)
    raise "config version #{version}" unless version == "2"

    yield($config = Recorder.new)
  end
end

DIR = __dir__
failures = []
check = ->(ok, what) { failures << what unless ok }

[1, 3].each do |n|
  ENV["BERTH_AGENTS"] = n.to_s
  # A child per run: the Vagrantfile defines constants.
  rd, wr = IO.pipe
  pid = fork do
    rd.close
    errs = []
    load File.join(DIR, "Vagrantfile")
    vm = $config.vm
    defines = vm.find(:define)
    names = defines.map { |d| d[1][0] }
    expected = ["berth-cp"] + (1..n).map { |i| "berth-agent-#{i}" }
    errs << "machines #{names} != #{expected}" unless names == expected
    ips = defines.map { |d| d[3].vm.find(:network).map { |c| c[2][:ip] } }.flatten
    errs << "private IPs #{ips} not one per machine" unless ips.compact.uniq.size == expected.size
    providers = vm.find(:provider).map { |c| c[1][0] }
    errs << "providers #{providers}" unless providers.sort == %i[libvirt virtualbox]
    defines.drop(1).each do |d|
      scripts = d[3].vm.find(:provision).map { |c| c[2][:path] }
      errs << "#{d[1][0]} is not provisioned as an agent" unless scripts.include?("provision/agent.sh")
    end
    agent_args = defines.last[3].vm.find(:provision).map { |c| c[2][:args] }.compact.first || []
    errs << "agents not pointed at the control plane: #{agent_args}" unless agent_args[1] == "https://192.168.56.10:8501"
    defines.drop(1).each do |d|
      name = d[1][0]
      runs = d[3].trigger.find(:before).flat_map { |t| t[3].find(:run=) }.map { |c| c[1][0] }
      fetch = runs.find { |r| r[:path].to_s.end_with?("lab-join-token.sh") }
      errs << "#{name} fetches no join token before it comes up" unless fetch
      errs << "#{name} fetches a token for #{fetch[:args]}" if fetch && fetch[:args] != [name]
    end
    triggers = defines.last[3].trigger.find(:after)
    inline = triggers.flat_map { |t| t[3].find(:run=) }.map { |c| c[1][0][:inline] }.first.to_s
    demo = inline[/bash (\S+demo\.sh)/, 1]
    errs << "the last agent does not run the demo (#{inline})" unless demo && File.file?(demo)
    wr.write(errs.join("\n"))
    wr.close
    exit!(errs.empty? ? 0 : 1)
  end
  wr.close
  out = rd.read
  Process.wait(pid)
  check.call($?.success?, "BERTH_AGENTS=#{n}: #{out}")
end

if failures.empty?
  puts "Vagrantfile ok (1 and 3 agents)"
else
  warn failures.join("\n")
  exit 1
end
