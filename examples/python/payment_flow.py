"""A Python client of yungate, generated from proto/: creates a member and takes a payment end to end.

Usage: python3 payment_flow.py [--target HOST:PORT] [--start PATH_TO_YUNGATE]

With --start it runs `yungate serve` itself on a free port (embedded defaults: the
sandbox, where every SMS code is 9999) and stops it afterwards. The stubs are
generated from ../../proto into a temporary folder with grpcio-tools, so they
always match the proto files of this checkout; the folder is removed at the end.
"""

import argparse
import importlib
import os
import socket
import subprocess
import sys
import tempfile
import time

import grpc
from grpc_tools import protoc

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_ROOT = os.path.normpath(os.path.join(HERE, "..", "..", "proto"))
CARD = "6228480402637874214"
NAME = "王小二"
ID_NO = "610422198600000000"
PHONE = "13800138000"


def generate_stubs(out):
    """Compiles proto/yungate/v1/*.proto to Python modules in the folder `out`."""
    include = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    files = sorted(
        os.path.join("yungate", "v1", name)
        for name in os.listdir(os.path.join(PROTO_ROOT, "yungate", "v1"))
        if name.endswith(".proto")
    )
    args = ["protoc", f"-I{PROTO_ROOT}", f"-I{include}", f"--python_out={out}", f"--grpc_python_out={out}", *files]
    if protoc.main(args) != 0:
        sys.exit("protoc failed")
    sys.path.insert(0, out)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gateway(binary):
    port = free_port()
    # Its notification ingress on any free port, so that it runs beside another gateway.
    proc = subprocess.Popen(
        [binary, "serve", "--listen", f"127.0.0.1:{port}", "--notify-listen", "127.0.0.1:0"],
        stderr=subprocess.DEVNULL,
    )
    target = f"127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            grpc.channel_ready_future(grpc.insecure_channel(target)).result(timeout=1)
            return proc, target
        except grpc.FutureTimeoutError:
            if proc.poll() is not None:
                sys.exit(f"yungate exited with {proc.returncode}")
    proc.kill()
    sys.exit("yungate did not start within 60 s")


def payment_flow(target):
    common = importlib.import_module("yungate.v1.common_pb2")
    member = importlib.import_module("yungate.v1.member_pb2")
    member_grpc = importlib.import_module("yungate.v1.member_pb2_grpc")
    order = importlib.import_module("yungate.v1.order_pb2")
    order_grpc = importlib.import_module("yungate.v1.order_pb2_grpc")
    notification = importlib.import_module("yungate.v1.notification_pb2")
    notification_grpc = importlib.import_module("yungate.v1.notification_pb2_grpc")

    channel = grpc.insecure_channel(target)
    members = member_grpc.MemberServiceStub(channel)
    orders = order_grpc.OrderServiceStub(channel)
    user = f"py-{int(time.time() * 1000)}"
    notifications = notification_grpc.NotificationServiceStub(channel)
    # Subscribe before paying: a new subscriber starts with the next event. Only this user's events.
    results = notifications.Subscribe(
        notification.SubscribeRequest(
            subscriber="python-example", filter=notification.NotificationFilter(biz_user_id=user)
        ),
        timeout=120,
    )

    created = members.CreateMember(
        member.CreateMemberRequest(biz_user_id=user, member_type=common.MEMBER_TYPE_INDIVIDUAL, source=common.SOURCE_MOBILE)
    )
    print(f"created member {created.biz_user_id} (provider id {created.user_id})")
    members.SetRealName(
        member.SetRealNameRequest(biz_user_id=user, name=NAME, identity_type=common.IDENTITY_TYPE_ID_CARD, identity_no=ID_NO)
    )
    members.SendVerificationCode(
        member.SendVerificationCodeRequest(
            biz_user_id=user, phone=PHONE, verification_code_type=common.VERIFICATION_CODE_TYPE_BIND_PHONE
        )
    )
    members.BindPhone(member.BindPhoneRequest(biz_user_id=user, phone=PHONE, verification_code="9999"))
    applied = members.ApplyBindBankCard(
        member.ApplyBindBankCardRequest(
            biz_user_id=user,
            card_no=CARD,
            phone=PHONE,
            name=NAME,
            card_check=common.CARD_CHECK_REAL_NAME_PAY,
            identity_type=common.IDENTITY_TYPE_ID_CARD,
            identity_no=ID_NO,
        )
    )
    members.BindBankCard(
        member.BindBankCardRequest(biz_user_id=user, trans_num=applied.trans_num, phone=PHONE, verification_code="9999")
    )
    print("bound phone and card")

    # A validation failure names every wrong field (google.rpc.BadRequest in the details).
    try:
        orders.DepositApply(order.DepositApplyRequest(biz_order_no=f"{user}-bad", biz_user_id=user, amount=100, fee=500))
        sys.exit("an invalid deposit was accepted")
    except grpc.RpcError as err:
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err
        print(f"invalid request refused: {err.details()[:80]}...")

    deposit = orders.DepositApply(
        order.DepositApplyRequest(
            biz_order_no=f"{user}-dep",
            biz_user_id=user,
            account_set_no="100000",
            amount=10000,
            fee=0,
            industry_code="1010",
            industry_name="保险代理",
            source=common.SOURCE_PC,
            pay_method=common.PayMethod(realnamepay=common.RealnamepayPayment(bank_card_no=CARD, amount=10000)),
        )
    )
    confirmed = orders.ConfirmPaySms(
        order.ConfirmPaySmsRequest(
            biz_user_id=user, biz_order_no=f"{user}-dep", verification_code="9999", consumer_ip="127.0.0.1"
        )
    )
    assert confirmed.pay_status == "success", confirmed
    balance = orders.QueryBalance(order.QueryBalanceRequest(biz_user_id=user, account_set_no="100000"))
    assert balance.all_amount == 10000, balance
    print(f"deposit {deposit.order_no} confirmed; balance {balance.all_amount} fen")

    # The provider's notification of the deposit (spec 4.2.12), through the gateway's stream.
    for event in results:
        if event.WhichOneof("event") == "order_result" and event.biz_order_no == f"{user}-dep":
            result = event.order_result
            print(f"notified: order {result.order_no} {result.status}, {result.amount} fen (cursor {event.cursor})")
            assert result.status == "OK" and result.amount == 10000, result
            notifications.Ack(notification.AckRequest(subscriber="python-example", cursors=[event.cursor]))
            break
    results.cancel()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="127.0.0.1:50051")
    parser.add_argument("--start", metavar="YUNGATE", help="start this yungate binary on a free port first")
    args = parser.parse_args()
    # The generated stubs live only as long as the run: the folder goes with it.
    with tempfile.TemporaryDirectory(prefix="yungate-py-") as stubs:
        generate_stubs(stubs)
        proc = None
        target = args.target
        if args.start:
            proc, target = start_gateway(args.start)
        try:
            payment_flow(target)
        finally:
            if proc:
                proc.terminate()
                proc.wait(timeout=30)
    print("python example: payment flow completed")


if __name__ == "__main__":
    main()
