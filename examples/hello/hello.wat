;; A WASI 0.3 "hello" command written directly in the component text format.
;;
;; It exports wasi:cli/run@0.3.0 (`run: async func() -> result`) and prints one
;; line through wasi:cli/stdout@0.3.0 (`write-via-stream: func(data:
;; stream<u8>) -> future<result<_, error-code>>`): it creates a stream<u8>,
;; hands the readable end to stdout, writes the message into the writable end
;; (waiting whenever the host has not read yet), closes it, and waits for the
;; future that reports whether everything reached stdout.
;;
;; Rebuild hello.wasm with `node examples/build.ts` (assembled by the wasm-tools
;; bundled in the jco devDependency).
(component
  (import "wasi:cli/types@0.3.0" (instance $types
    (type $ec (enum "io" "illegal-byte-sequence" "pipe"))
    (export "error-code" (type (eq $ec)))))
  (alias export $types "error-code" (type $error-code))
  (import "wasi:cli/stdout@0.3.0" (instance $stdout
    (alias outer 1 $error-code (type $ec'))
    (export "error-code" (type $ec (eq $ec')))
    (type $r (result (error $ec)))
    (type $f (future $r))
    (type $s (stream u8))
    (export "write-via-stream" (func (param "data" $s) (result $f)))))
  (alias export $stdout "write-via-stream" (func $write-via-stream))

  (type $bytes (stream u8))
  (type $done (future (result (error $error-code))))
  (type $run-result (result))

  ;; The memory the canonical ABI reads the message from.
  (core module $memory (memory (export "mem") 1))
  (core instance $memory (instantiate $memory))

  (core func $write-via-stream' (canon lower (func $write-via-stream)))
  (core func $stream.new (canon stream.new $bytes))
  (core func $stream.write (canon stream.write $bytes async (memory (core memory $memory "mem"))))
  (core func $stream.drop-writable (canon stream.drop-writable $bytes))
  (core func $future.read (canon future.read $done async (memory (core memory $memory "mem"))))
  (core func $future.drop-readable (canon future.drop-readable $done))
  (core func $waitable-set.new (canon waitable-set.new))
  (core func $waitable-set.drop (canon waitable-set.drop))
  (core func $waitable.join (canon waitable.join))
  (core func $task.return (canon task.return (result $run-result)))

  (core module $main
    (import "" "mem" (memory 1))
    (import "" "write-via-stream" (func $write-via-stream (param i32) (result i32)))
    (import "" "stream.new" (func $stream.new (result i64)))
    (import "" "stream.write" (func $stream.write (param i32 i32 i32) (result i32)))
    (import "" "stream.drop-writable" (func $stream.drop-writable (param i32)))
    (import "" "future.read" (func $future.read (param i32 i32) (result i32)))
    (import "" "future.drop-readable" (func $future.drop-readable (param i32)))
    (import "" "waitable-set.new" (func $waitable-set.new (result i32)))
    (import "" "waitable-set.drop" (func $waitable-set.drop (param i32)))
    (import "" "waitable.join" (func $waitable.join (param i32 i32)))
    (import "" "task.return" (func $task.return (param i32)))

    ;; the message at 16; the future's value (result<_, error-code>: 2 bytes) lands at 0
    (data (i32.const 16) "Hello from a WebAssembly component (WASI 0.3)!\n")
    (global $len i32 (i32.const 47))

    (global $w (mut i32) (i32.const 0))    ;; writable end of the stream
    (global $f (mut i32) (i32.const 0))    ;; readable end of stdout's future
    (global $ws (mut i32) (i32.const 0))   ;; the waitable set the task waits on
    (global $off (mut i32) (i32.const 0))  ;; bytes written so far

    ;; callback codes (CanonicalABI.md): EXIT 0, WAIT 2 (| set << 4)
    ;; event codes: STREAM_WRITE 3, FUTURE_READ 4; BLOCKED is 0xffffffff
    ;; copy results (low 4 bits of a stream event payload): COMPLETED 0, DROPPED 1

    (func $wait (param $h i32) (result i32)
      (call $waitable.join (local.get $h) (global.get $ws))
      (i32.or (i32.const 2) (i32.shl (global.get $ws) (i32.const 4))))

    ;; finish the task with result::ok (0) or result::err (1)
    (func $exit (param $err i32) (result i32)
      (call $waitable-set.drop (global.get $ws))
      (call $task.return (local.get $err))
      (i32.const 0))

    ;; the future resolved: its value is at 0 (discriminant 0 = ok)
    (func $flushed (result i32)
      (call $future.drop-readable (global.get $f))
      (call $exit (i32.ne (i32.load8_u (i32.const 0)) (i32.const 0))))

    ;; all bytes written: close the stream, then wait for stdout's verdict
    (func $close (result i32)
      (call $stream.drop-writable (global.get $w))
      (if (i32.eq (call $future.read (global.get $f) (i32.const 0)) (i32.const -1))
        (then (return (call $wait (global.get $f)))))
      (call $flushed))

    ;; write the rest of the message until done or the host must read first
    (func $write (result i32) (local $rc i32)
      (loop $more
        (if (i32.ge_u (global.get $off) (global.get $len)) (then (return (call $close))))
        (local.set $rc (call $stream.write (global.get $w)
          (i32.add (i32.const 16) (global.get $off)) (i32.sub (global.get $len) (global.get $off))))
        (if (i32.eq (local.get $rc) (i32.const -1)) (then (return (call $wait (global.get $w)))))
        (global.set $off (i32.add (global.get $off) (i32.shr_u (local.get $rc) (i32.const 4))))
        ;; the reader went away: stdout is closed
        (if (i32.eq (i32.and (local.get $rc) (i32.const 0xf)) (i32.const 1))
          (then (call $stream.drop-writable (global.get $w)) (call $future.drop-readable (global.get $f))
            (return (call $exit (i32.const 1)))))
        (br $more))
      unreachable)

    (func (export "run") (result i32) (local $ends i64)
      (local.set $ends (call $stream.new))
      (global.set $w (i32.wrap_i64 (i64.shr_u (local.get $ends) (i64.const 32))))
      (global.set $f (call $write-via-stream (i32.wrap_i64 (local.get $ends))))
      (global.set $ws (call $waitable-set.new))
      (call $write))

    (func (export "callback") (param $event i32) (param $h i32) (param $payload i32) (result i32)
      (call $waitable.join (local.get $h) (i32.const 0))
      (if (i32.eq (local.get $event) (i32.const 4)) (then (return (call $flushed))))
      ;; STREAM_WRITE: count what was copied, then go on
      (global.set $off (i32.add (global.get $off) (i32.shr_u (local.get $payload) (i32.const 4))))
      (if (i32.eq (i32.and (local.get $payload) (i32.const 0xf)) (i32.const 1))
        (then (call $stream.drop-writable (global.get $w)) (call $future.drop-readable (global.get $f))
          (return (call $exit (i32.const 1)))))
      (call $write)))

  (core instance $main (instantiate $main (with "" (instance
    (export "mem" (memory $memory "mem"))
    (export "write-via-stream" (func $write-via-stream'))
    (export "stream.new" (func $stream.new))
    (export "stream.write" (func $stream.write))
    (export "stream.drop-writable" (func $stream.drop-writable))
    (export "future.read" (func $future.read))
    (export "future.drop-readable" (func $future.drop-readable))
    (export "waitable-set.new" (func $waitable-set.new))
    (export "waitable-set.drop" (func $waitable-set.drop))
    (export "waitable.join" (func $waitable.join))
    (export "task.return" (func $task.return))))))

  (func $run async (result $run-result)
    (canon lift (core func $main "run") async (callback (core func $main "callback"))))
  (instance $run (export "run" (func $run)))
  (export "wasi:cli/run@0.3.0" (instance $run)))
