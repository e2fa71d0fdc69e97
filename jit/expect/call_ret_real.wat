;; real mode: call f; hlt; f: push ax; pop cx; ret
(module
 (type $0 (func (param i32 i32) (result i32)))
 (type $1 (func (param i32 i32 i32) (result i32)))
 (import "e" "mem" (memory $0 1))
 (import "e" "slow" (func $slow (param i32 i32 i32) (result i32)))
 (import "e" "callout" (func $callout (param i32 i32) (result i32)))
 (export "run" (func $run))
 (func $run (param $0 i32) (param $1 i32) (result i32)
  (local $2 i32)
  (local $3 i32)
  (local $4 i32)
  (local $5 i32)
  (local $6 i32)
  (local $7 i32)
  (local $8 i32)
  (local $9 i32)
  (local $10 i32)
  (local $11 i32)
  (local $12 i32)
  (local $13 i32)
  (local $14 i32)
  (local $15 i32)
  (local $16 i32)
  (local $17 i32)
  (local $18 i32)
  (local $19 i32)
  (local $20 i32)
  (local $21 i32)
  (local $22 i32)
  (local $23 i32)
  (local $24 i32)
  (local $25 i32)
  (local $26 i32)
  (local.set $2
   (i32.load offset=16777216
    (i32.const 0)
   )
  )
  (local.set $3
   (i32.load offset=16777224
    (i32.const 0)
   )
  )
  (local.set $6
   (i32.load offset=16777248
    (i32.const 0)
   )
  )
  (block $exit
   (block
    (local.set $16
     (i32.const 0)
    )
    (if
     (i32.or
      (i32.gt_u
       (i32.add
        (local.get $16)
        (i32.const 4)
       )
       (local.get $1)
      )
      (i32.ge_u
       (local.get $16)
       (i32.const 65536)
      )
     )
     (then
      (local.set $17
       (i32.const 4096)
      )
      (br $exit)
     )
    )
    (local.set $22
     (i32.and
      (i32.sub
       (local.get $6)
       (i32.const 2)
      )
      (i32.const 65535)
     )
    )
    (local.set $23
     (local.get $22)
    )
    (if
     (i32.gt_u
      (local.get $23)
      (i32.const 65534)
     )
     (then
      (local.set $16
       (i32.add
        (local.get $16)
        (i32.const 0)
       )
      )
      (local.set $17
       (i32.const 4096)
      )
      (br $exit)
     )
    )
    (local.set $24
     (i32.and
      (i32.shr_u
       (local.get $23)
       (i32.const 10)
      )
      (i32.const 16380)
     )
    )
    (if
     (i32.eq
      (i32.load offset=16797696
       (local.get $24)
      )
      (i32.shr_u
       (i32.add
        (local.get $23)
        (i32.const 1)
       )
       (i32.const 12)
      )
     )
     (then
      (local.set $25
       (i32.add
        (i32.load offset=16814080
         (local.get $24)
        )
        (i32.and
         (local.get $23)
         (i32.const 4095)
        )
       )
      )
     )
     (else
      (local.set $25
       (call $slow
        (local.get $23)
        (i32.const 2)
        (i32.const 1)
       )
      )
      (if
       (i32.lt_s
        (local.get $25)
        (i32.const 0)
       )
       (then
        (local.set $16
         (i32.add
          (local.get $16)
          (i32.const 0)
         )
        )
        (local.set $17
         (i32.const 4096)
        )
        (br $exit)
       )
      )
     )
    )
    (i32.store16 align=1
     (local.get $25)
     (i32.const 4099)
    )
    (local.set $6
     (i32.or
      (i32.and
       (local.get $6)
       (i32.const -65536)
      )
      (local.get $22)
     )
    )
    (local.set $16
     (i32.add
      (local.get $16)
      (i32.const 1)
     )
    )
    (block
     (local.set $22
      (i32.and
       (local.get $2)
       (i32.const 65535)
      )
     )
     (local.set $23
      (i32.and
       (i32.sub
        (local.get $6)
        (i32.const 2)
       )
       (i32.const 65535)
      )
     )
     (local.set $24
      (local.get $23)
     )
     (if
      (i32.gt_u
       (local.get $24)
       (i32.const 65534)
      )
      (then
       (local.set $16
        (i32.add
         (local.get $16)
         (i32.const 0)
        )
       )
       (local.set $17
        (i32.const 4100)
       )
       (br $exit)
      )
     )
     (local.set $25
      (i32.and
       (i32.shr_u
        (local.get $24)
        (i32.const 10)
       )
       (i32.const 16380)
      )
     )
     (if
      (i32.eq
       (i32.load offset=16797696
        (local.get $25)
       )
       (i32.shr_u
        (i32.add
         (local.get $24)
         (i32.const 1)
        )
        (i32.const 12)
       )
      )
      (then
       (local.set $26
        (i32.add
         (i32.load offset=16814080
          (local.get $25)
         )
         (i32.and
          (local.get $24)
          (i32.const 4095)
         )
        )
       )
      )
      (else
       (local.set $26
        (call $slow
         (local.get $24)
         (i32.const 2)
         (i32.const 1)
        )
       )
       (if
        (i32.lt_s
         (local.get $26)
         (i32.const 0)
        )
        (then
         (local.set $16
          (i32.add
           (local.get $16)
           (i32.const 0)
          )
         )
         (local.set $17
          (i32.const 4100)
         )
         (br $exit)
        )
       )
      )
     )
     (i32.store16 align=1
      (local.get $26)
      (local.get $22)
     )
     (local.set $6
      (i32.or
       (i32.and
        (local.get $6)
        (i32.const -65536)
       )
       (local.get $23)
      )
     )
     (local.set $22
      (i32.and
       (local.get $6)
       (i32.const 65535)
      )
     )
     (if
      (i32.gt_u
       (local.get $22)
       (i32.const 65534)
      )
      (then
       (local.set $16
        (i32.add
         (local.get $16)
         (i32.const 1)
        )
       )
       (local.set $17
        (i32.const 4101)
       )
       (br $exit)
      )
     )
     (local.set $23
      (i32.and
       (i32.shr_u
        (local.get $22)
        (i32.const 10)
       )
       (i32.const 16380)
      )
     )
     (if
      (i32.eq
       (i32.load offset=16781312
        (local.get $23)
       )
       (i32.shr_u
        (i32.add
         (local.get $22)
         (i32.const 1)
        )
        (i32.const 12)
       )
      )
      (then
       (local.set $24
        (i32.add
         (i32.load offset=16814080
          (local.get $23)
         )
         (i32.and
          (local.get $22)
          (i32.const 4095)
         )
        )
       )
      )
      (else
       (local.set $24
        (call $slow
         (local.get $22)
         (i32.const 2)
         (i32.const 0)
        )
       )
       (if
        (i32.lt_s
         (local.get $24)
         (i32.const 0)
        )
        (then
         (local.set $16
          (i32.add
           (local.get $16)
           (i32.const 1)
          )
         )
         (local.set $17
          (i32.const 4101)
         )
         (br $exit)
        )
       )
      )
     )
     (local.set $25
      (i32.load16_u align=1
       (local.get $24)
      )
     )
     (local.set $6
      (i32.or
       (i32.and
        (local.get $6)
        (i32.const -65536)
       )
       (i32.and
        (i32.add
         (local.get $6)
         (i32.const 2)
        )
        (i32.const 65535)
       )
      )
     )
     (local.set $3
      (i32.or
       (i32.and
        (local.get $3)
        (i32.const -65536)
       )
       (i32.and
        (local.get $25)
        (i32.const 65535)
       )
      )
     )
     (local.set $22
      (i32.and
       (local.get $6)
       (i32.const 65535)
      )
     )
     (if
      (i32.gt_u
       (local.get $22)
       (i32.const 65534)
      )
      (then
       (local.set $16
        (i32.add
         (local.get $16)
         (i32.const 2)
        )
       )
       (local.set $17
        (i32.const 4102)
       )
       (br $exit)
      )
     )
     (local.set $23
      (i32.and
       (i32.shr_u
        (local.get $22)
        (i32.const 10)
       )
       (i32.const 16380)
      )
     )
     (if
      (i32.eq
       (i32.load offset=16781312
        (local.get $23)
       )
       (i32.shr_u
        (i32.add
         (local.get $22)
         (i32.const 1)
        )
        (i32.const 12)
       )
      )
      (then
       (local.set $24
        (i32.add
         (i32.load offset=16814080
          (local.get $23)
         )
         (i32.and
          (local.get $22)
          (i32.const 4095)
         )
        )
       )
      )
      (else
       (local.set $24
        (call $slow
         (local.get $22)
         (i32.const 2)
         (i32.const 0)
        )
       )
       (if
        (i32.lt_s
         (local.get $24)
         (i32.const 0)
        )
        (then
         (local.set $16
          (i32.add
           (local.get $16)
           (i32.const 2)
          )
         )
         (local.set $17
          (i32.const 4102)
         )
         (br $exit)
        )
       )
      )
     )
     (local.set $25
      (i32.load16_u align=1
       (local.get $24)
      )
     )
     (local.set $26
      (i32.and
       (local.get $25)
       (i32.const 65535)
      )
     )
     (if
      (i32.gt_u
       (local.get $26)
       (i32.const 65535)
      )
      (then
       (local.set $16
        (i32.add
         (local.get $16)
         (i32.const 2)
        )
       )
       (local.set $17
        (i32.const 4102)
       )
       (br $exit)
      )
     )
     (local.set $6
      (i32.or
       (i32.and
        (local.get $6)
        (i32.const -65536)
       )
       (i32.and
        (i32.add
         (local.get $6)
         (i32.const 2)
        )
        (i32.const 65535)
       )
      )
     )
     (local.set $19
      (local.get $26)
     )
     (local.set $16
      (i32.add
       (local.get $16)
       (i32.const 3)
      )
     )
     (block
      (local.set $17
       (local.get $19)
      )
      (br $exit)
     )
    )
   )
  )
  (i32.store offset=16777224
   (i32.const 0)
   (local.get $3)
  )
  (i32.store offset=16777248
   (i32.const 0)
   (local.get $6)
  )
  (i32.store offset=16777344
   (i32.const 0)
   (local.get $17)
  )
  (return
   (i32.or
    (local.get $16)
    (i32.shl
     (local.get $21)
     (i32.const 21)
    )
   )
  )
 )
)
