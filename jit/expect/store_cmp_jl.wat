;; l: mov [ebx+4], eax; inc eax; cmp eax, 10; jl l; hlt
(module
 (type $0 (func (param i32 i32) (result i32)))
 (type $1 (func (param i32 i32 i32) (result i32)))
 (type $2 (func (param i32 i32 i32 i32 i32 i32) (result i32)))
 (import "e" "mem" (memory $0 1))
 (import "e" "slow" (func $slow (param i32 i32 i32) (result i32)))
 (import "e" "callout" (func $callout (param i32 i32) (result i32)))
 (export "run" (func $run))
 (func $flags (param $0 i32) (param $1 i32) (param $2 i32) (param $3 i32) (param $4 i32) (param $5 i32) (result i32)
  (local $6 i32)
  (local $7 i32)
  (local $8 i32)
  (local $9 i32)
  (local.set $6
   (i32.shr_s
    (local.get $0)
    (i32.const 8)
   )
  )
  (local.set $9
   (i32.and
    (local.get $0)
    (i32.const 255)
   )
  )
  (local.set $7
   (select
    (i32.const -1)
    (i32.sub
     (i32.shl
      (i32.const 1)
      (local.get $6)
     )
     (i32.const 1)
    )
    (i32.eq
     (local.get $6)
     (i32.const 32)
    )
   )
  )
  (local.set $8
   (i32.and
    (local.get $5)
    (i32.xor
     (local.get $4)
     (i32.const -1)
    )
   )
  )
  (if
   (i32.and
    (local.get $4)
    (i32.const 1)
   )
   (then
    (local.set $8
     (i32.or
      (local.get $8)
      (select
       (i32.lt_u
        (i32.and
         (local.get $1)
         (local.get $7)
        )
        (i32.and
         (local.get $2)
         (local.get $7)
        )
       )
       (select
        (i32.le_u
         (i32.and
          (local.get $1)
          (local.get $7)
         )
         (i32.and
          (local.get $2)
          (local.get $7)
         )
        )
        (select
         (i32.lt_u
          (i32.and
           (local.get $2)
           (local.get $7)
          )
          (i32.and
           (local.get $3)
           (local.get $7)
          )
         )
         (select
          (i32.le_u
           (i32.and
            (local.get $2)
            (local.get $7)
           )
           (i32.and
            (local.get $3)
            (local.get $7)
           )
          )
          (i32.const 0)
          (i32.eq
           (local.get $9)
           (i32.const 4)
          )
         )
         (i32.eq
          (local.get $9)
          (i32.const 3)
         )
        )
        (i32.eq
         (local.get $9)
         (i32.const 2)
        )
       )
       (i32.eq
        (local.get $9)
        (i32.const 1)
       )
      )
     )
    )
   )
  )
  (if
   (i32.and
    (local.get $4)
    (i32.const 4)
   )
   (then
    (local.set $8
     (i32.or
      (local.get $8)
      (i32.shl
       (i32.eqz
        (i32.and
         (i32.popcnt
          (i32.and
           (local.get $1)
           (i32.const 255)
          )
         )
         (i32.const 1)
        )
       )
       (i32.const 2)
      )
     )
    )
   )
  )
  (if
   (i32.and
    (local.get $4)
    (i32.const 16)
   )
   (then
    (local.set $8
     (i32.or
      (local.get $8)
      (i32.and
       (i32.xor
        (i32.xor
         (local.get $2)
         (local.get $3)
        )
        (local.get $1)
       )
       (i32.const 16)
      )
     )
    )
   )
  )
  (if
   (i32.and
    (local.get $4)
    (i32.const 64)
   )
   (then
    (local.set $8
     (i32.or
      (local.get $8)
      (i32.shl
       (i32.eqz
        (i32.and
         (local.get $1)
         (local.get $7)
        )
       )
       (i32.const 6)
      )
     )
    )
   )
  )
  (if
   (i32.and
    (local.get $4)
    (i32.const 128)
   )
   (then
    (local.set $8
     (i32.or
      (local.get $8)
      (i32.shl
       (i32.and
        (i32.shr_u
         (local.get $1)
         (i32.sub
          (local.get $6)
          (i32.const 1)
         )
        )
        (i32.const 1)
       )
       (i32.const 7)
      )
     )
    )
   )
  )
  (if
   (i32.and
    (local.get $4)
    (i32.const 2048)
   )
   (then
    (local.set $8
     (i32.or
      (local.get $8)
      (i32.shl
       (select
        (i32.and
         (i32.shr_u
          (i32.and
           (i32.xor
            (local.get $2)
            (local.get $1)
           )
           (i32.xor
            (local.get $3)
            (local.get $1)
           )
          )
          (i32.sub
           (local.get $6)
           (i32.const 1)
          )
         )
         (i32.const 1)
        )
        (select
         (i32.and
          (i32.shr_u
           (i32.and
            (i32.xor
             (local.get $2)
             (local.get $3)
            )
            (i32.xor
             (local.get $2)
             (local.get $1)
            )
           )
           (i32.sub
            (local.get $6)
            (i32.const 1)
           )
          )
          (i32.const 1)
         )
         (i32.const 0)
         (i32.or
          (i32.eq
           (local.get $9)
           (i32.const 3)
          )
          (i32.eq
           (local.get $9)
           (i32.const 4)
          )
         )
        )
        (i32.or
         (i32.eq
          (local.get $9)
          (i32.const 1)
         )
         (i32.eq
          (local.get $9)
          (i32.const 2)
         )
        )
       )
       (i32.const 11)
      )
     )
    )
   )
  )
  (return
   (i32.or
    (local.get $8)
    (i32.const 2)
   )
  )
 )
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
  (local.set $2
   (i32.load offset=16777216
    (i32.const 0)
   )
  )
  (local.set $5
   (i32.load offset=16777240
    (i32.const 0)
   )
  )
  (local.set $10
   (i32.load offset=16777760
    (i32.const 0)
   )
  )
  (local.set $11
   (i32.load offset=16777764
    (i32.const 0)
   )
  )
  (local.set $12
   (i32.load offset=16777768
    (i32.const 0)
   )
  )
  (local.set $13
   (i32.load offset=16777772
    (i32.const 0)
   )
  )
  (local.set $14
   (i32.load offset=16777776
    (i32.const 0)
   )
  )
  (local.set $15
   (i32.load offset=16777352
    (i32.const 0)
   )
  )
  (block $exit
   (block
    (local.set $16
     (i32.const 0)
    )
    (loop $L0
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
        (i32.const 1048576)
       )
       (br $exit)
      )
     )
     (local.set $22
      (i32.add
       (i32.const 4)
       (local.get $5)
      )
     )
     (if
      (i32.gt_u
       (local.get $22)
       (i32.const -4)
      )
      (then
       (local.set $16
        (i32.add
         (local.get $16)
         (i32.const 0)
        )
       )
       (local.set $17
        (i32.const 1048576)
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
       (i32.load offset=16797696
        (local.get $23)
       )
       (i32.shr_u
        (i32.add
         (local.get $22)
         (i32.const 3)
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
         (i32.const 4)
         (i32.const 1)
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
           (i32.const 0)
          )
         )
         (local.set $17
          (i32.const 1048576)
         )
         (br $exit)
        )
       )
      )
     )
     (i32.store align=1
      (local.get $24)
      (local.get $2)
     )
     (local.set $22
      (local.get $2)
     )
     (local.set $23
      (i32.add
       (local.get $22)
       (i32.const 1)
      )
     )
     (if
      (i32.and
       (local.get $14)
       (i32.const 1)
      )
      (then
       (local.set $15
        (i32.or
         (i32.and
          (local.get $15)
          (i32.const -2)
         )
         (i32.and
          (call $flags
           (local.get $10)
           (local.get $11)
           (local.get $12)
           (local.get $13)
           (local.get $14)
           (local.get $15)
          )
          (i32.const 1)
         )
        )
       )
      )
     )
     (local.set $10
      (i32.const 8193)
     )
     (local.set $11
      (local.get $23)
     )
     (local.set $12
      (local.get $22)
     )
     (local.set $13
      (i32.const 1)
     )
     (local.set $14
      (i32.const 2260)
     )
     (local.set $2
      (local.get $23)
     )
     (local.set $22
      (local.get $2)
     )
     (local.set $23
      (i32.const 10)
     )
     (local.set $24
      (i32.sub
       (local.get $22)
       (local.get $23)
      )
     )
     (local.set $10
      (i32.const 8195)
     )
     (local.set $11
      (local.get $24)
     )
     (local.set $12
      (local.get $22)
     )
     (local.set $13
      (local.get $23)
     )
     (local.set $14
      (i32.const 2261)
     )
     (local.set $18
      (i32.lt_s
       (local.get $12)
       (local.get $13)
      )
     )
     (local.set $16
      (i32.add
       (local.get $16)
       (i32.const 4)
      )
     )
     (if
      (local.get $18)
      (then
       (br $L0)
      )
      (else
       (local.set $17
        (i32.const 1048585)
       )
       (br $exit)
      )
     )
    )
   )
  )
  (i32.store offset=16777216
   (i32.const 0)
   (local.get $2)
  )
  (i32.store offset=16777760
   (i32.const 0)
   (local.get $10)
  )
  (i32.store offset=16777764
   (i32.const 0)
   (local.get $11)
  )
  (i32.store offset=16777768
   (i32.const 0)
   (local.get $12)
  )
  (i32.store offset=16777772
   (i32.const 0)
   (local.get $13)
  )
  (i32.store offset=16777776
   (i32.const 0)
   (local.get $14)
  )
  (i32.store offset=16777352
   (i32.const 0)
   (local.get $15)
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
